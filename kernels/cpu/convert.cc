// CpuConvert: elementwise dtype conversion between host tensors of equal
// size: f32 rounded to nearest even bf16 or f16 (as torch's .to()), bf16 or
// f16 widened exactly to f32, or a plain copy when the dtypes match.
#include <cstring>

#include "core/check.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/cpu/ops.h"

namespace jamba::kernels {
namespace {

// f32 to IEEE binary16, round to nearest even (normal range, subnormals,
// overflow to infinity, NaN kept).
uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (abs < 0x38800000u) {                                // below 2^-14: subnormal or zero
    const int shift = 126 - static_cast<int>(abs >> 23);  // value = mant * 2^(e-150)
    if (shift > 24) return static_cast<uint16_t>(sign);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t half = mant >> shift, rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    return static_cast<uint16_t>(sign | (half + (rest > mid || (rest == mid && (half & 1)))));
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

}  // namespace

void CpuConvert(const Tensor& src, Tensor* dst) {
  CheckHost(src, "Convert", "src");
  CheckHost(*dst, "Convert", "dst");
  const bool f32_in = src.dtype() == DType::kF32, f32_out = dst->dtype() == DType::kF32;
  JAMBA_CHECK(src.numel() == dst->numel() && IsFloatDType(src.dtype()) &&
              IsFloatDType(dst->dtype()) && (f32_in || f32_out))
      << "Convert: src " << src.DebugString() << " dst " << dst->DebugString()
      << " (want equal sizes, F32 on at least one side, F32/BF16/F16)";
  const int64_t n = src.numel();
  if (src.dtype() == dst->dtype()) {
    std::memmove(dst->raw_data(), src.raw_data(), src.nbytes());
  } else if (f32_out) {
    // PyTorch: dst = src.float()
    RowToF32(src.raw_data(), src.dtype(), n, dst->data<float>());
  } else {
    // PyTorch: dst = src.to(torch.bfloat16) (or torch.float16)
    const float* s = src.data<float>();
    uint16_t* d = static_cast<uint16_t*>(dst->raw_data());
    const bool bf16 = dst->dtype() == DType::kBF16;
    for (int64_t i = 0; i < n; ++i) d[i] = bf16 ? F32ToBf16(s[i]) : F32ToF16(s[i]);
  }
}

}  // namespace jamba::kernels
