#include "kernels/cpu_fast/lane_panels.h"

#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/thread_pool.h"

namespace jamba::kernels {
namespace {

// The panels of strips [s0, s1) of w [N, K]: dst[s][l][c][j] = w[16s + j][8c + l].
template <typename T>
void PackStrips(const T* w, int64_t K, int64_t s0, int64_t s1, T* dst) {
  const int64_t K8 = K / 8;
  for (int64_t s = s0; s < s1; ++s) {
    T* strip = dst + s * kPanelRows * K;  // [8][K8][16]
    for (int j = 0; j < kPanelRows; ++j) {
      const T* row = w + (s * kPanelRows + j) * K;
      for (int64_t c = 0; c < K8; ++c) {
        for (int l = 0; l < 8; ++l) strip[(l * K8 + c) * kPanelRows + j] = row[8 * c + l];
      }
    }
  }
}

}  // namespace

bool FitsLanePanels(const Tensor& w) {
  return w.defined() && w.device() == Device::kCpu && w.layout() == Layout::kRowMajor &&
         w.rank() == 2 && (w.dtype() == DType::kF32 || w.dtype() == DType::kBF16) &&
         w.dim(0) % kPanelRows == 0 && w.dim(1) % 8 == 0;
}

absl::StatusOr<Tensor> ToLanePanels(const Tensor& w) {
  JAMBA_CHECK(FitsLanePanels(w)) << "ToLanePanels: " << w.DebugString();
  std::shared_ptr<Buffer> buffer = AllocateHostBuffer(w.nbytes());
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of host memory packing a weight ", w.DebugString()));
  }
  Tensor panels =
      Tensor(w.dtype(), w.shape(), std::move(buffer)).WithLayout(Layout::kBackendPacked);
  const int64_t K = w.dim(1), strips = w.dim(0) / kPanelRows;
  ThreadPool::Default().ParallelFor(strips, 1, [&](int64_t s0, int64_t s1) {
    if (w.dtype() == DType::kBF16) {
      PackStrips(static_cast<const uint16_t*>(w.raw_data()), K, s0, s1,
                 static_cast<uint16_t*>(panels.raw_data()));
    } else {
      PackStrips(w.data<float>(), K, s0, s1, static_cast<float*>(panels.raw_data()));
    }
  });
  return panels;
}

JAMBA_AVX2 void CombineLaneSums(const float* part, const float* bias, float* y, int64_t ldy, int mr,
                                int nr) {
  alignas(32) float bias_row[kPanelRows] = {};
  if (bias != nullptr) std::memcpy(bias_row, bias, nr * sizeof(float));
  for (int i = 0; i < mr; ++i) {
    alignas(32) float out[kPanelRows];
    float* dst = nr == kPanelRows ? y + i * ldy : out;  // a full row goes straight to y
    for (int h = 0; h < kPanelRows; h += 8) {
      __m256 v[8];
      for (int l = 0; l < 8; ++l) {
        v[l] = _mm256_loadu_ps(part + (l * kPackedTileRows + i) * kPanelRows + h);
      }
      // Avx2Tile's HSum order, then its bias add.
      const __m256 sum =
          _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v[0], v[4]), _mm256_add_ps(v[2], v[6])),
                        _mm256_add_ps(_mm256_add_ps(v[1], v[5]), _mm256_add_ps(v[3], v[7])));
      _mm256_storeu_ps(dst + h,
                       bias != nullptr ? _mm256_add_ps(sum, _mm256_load_ps(bias_row + h)) : sum);
    }
    if (nr < kPanelRows) std::memcpy(y + i * ldy, out, nr * sizeof(float));
  }
}

}  // namespace jamba::kernels
