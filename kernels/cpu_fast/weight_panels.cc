#include "kernels/cpu_fast/weight_panels.h"

#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/thread_pool.h"

namespace jamba::kernels {
namespace {

// The panels of strips [s0, s1) of w [N, K] f32: for each step c, the two
// 8 x 8 blocks w[16s + 8h + i][8c + l] (h = 0, 1) transposed in registers,
// so that w[16s + 8h + i][8c + l] lands at dst[s][8c + l][8h + i].
JAMBA_AVX2 void PackStrips32(const float* w, int64_t K, int64_t s0, int64_t s1, float* dst) {
  const int64_t K8 = K / 8;
  for (int64_t s = s0; s < s1; ++s) {
    const float* rows = w + s * kPanelRows * K;  // [16][K]
    float* strip = dst + s * kPanelRows * K;     // [K][16]
    for (int64_t c = 0; c < K8; ++c) {
      for (int h = 0; h < 2; ++h) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows + (8 * h + i) * K + 8 * c);
        Transpose8(r);  // r[l] = k = 8c + l of rows 8h .. 8h + 7
        for (int l = 0; l < 8; ++l)
          _mm256_storeu_ps(strip + (8 * c + l) * kPanelRows + 8 * h, r[l]);
      }
    }
  }
}

// The same for 16-bit elements (BF16), with 8 x 8 transposes of u16, each
// k's 16 weights stored in the order LoadPanelStep widens them: rows 0-3,
// 8-11, 4-7, 12-15.
JAMBA_AVX2 void PackStrips16(const uint16_t* w, int64_t K, int64_t s0, int64_t s1, uint16_t* dst) {
  const int64_t K8 = K / 8;
  for (int64_t s = s0; s < s1; ++s) {
    const uint16_t* rows = w + s * kPanelRows * K;
    uint16_t* strip = dst + s * kPanelRows * K;
    for (int64_t c = 0; c < K8; ++c) {
      __m128i col[2][8];  // col[h][l]: rows 8h .. 8h + 7 at k = 8c + l
      for (int h = 0; h < 2; ++h) {
        __m128i a[8], t[8], u[8];
        for (int i = 0; i < 8; ++i) {
          a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + (8 * h + i) * K + 8 * c));
        }
        // t: pairs of rows interleaved; u: quads; then columns.
        for (int i = 0; i < 8; i += 2) {
          t[i] = _mm_unpacklo_epi16(a[i], a[i + 1]);
          t[i + 1] = _mm_unpackhi_epi16(a[i], a[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
          u[i] = _mm_unpacklo_epi32(t[i], t[i + 2]);
          u[i + 1] = _mm_unpackhi_epi32(t[i], t[i + 2]);
          u[i + 2] = _mm_unpacklo_epi32(t[i + 1], t[i + 3]);
          u[i + 3] = _mm_unpackhi_epi32(t[i + 1], t[i + 3]);
        }
        for (int q = 0; q < 4; ++q) {  // u[q]: rows 0-3, u[q + 4]: rows 4-7, k = 8c + 2q, +1
          col[h][2 * q] = _mm_unpacklo_epi64(u[q], u[q + 4]);
          col[h][2 * q + 1] = _mm_unpackhi_epi64(u[q], u[q + 4]);
        }
      }
      for (int l = 0; l < 8; ++l) {
        uint16_t* at = strip + (8 * c + l) * kPanelRows;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm_unpacklo_epi64(col[0][l], col[1][l]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(at + 8),
                         _mm_unpackhi_epi64(col[0][l], col[1][l]));
      }
    }
  }
}

}  // namespace

bool FitsWeightPanels(const Tensor& w) {
  return w.defined() && w.device() == Device::kCpu && w.layout() == Layout::kRowMajor &&
         w.rank() == 2 && (w.dtype() == DType::kF32 || w.dtype() == DType::kBF16) &&
         w.dim(0) % kPanelRows == 0 && w.dim(1) % 8 == 0;
}

absl::StatusOr<Tensor> ToWeightPanels(const Tensor& w) {
  JAMBA_CHECK(FitsWeightPanels(w)) << "ToWeightPanels: " << w.DebugString();
  std::shared_ptr<Buffer> buffer = AllocateLongLivedHostBuffer(w.nbytes());
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of host memory packing a weight ", w.DebugString()));
  }
  Tensor panels =
      Tensor(w.dtype(), w.shape(), std::move(buffer)).WithLayout(Layout::kBackendPacked);
  const int64_t K = w.dim(1), strips = w.dim(0) / kPanelRows;
  ThreadPool::Default().ParallelFor(strips, 1, [&](int64_t s0, int64_t s1) {
    if (w.dtype() == DType::kBF16) {
      PackStrips16(static_cast<const uint16_t*>(w.raw_data()), K, s0, s1,
                   static_cast<uint16_t*>(panels.raw_data()));
    } else {
      PackStrips32(w.data<float>(), K, s0, s1, static_cast<float*>(panels.raw_data()));
    }
  });
  return panels;
}

}  // namespace jamba::kernels
