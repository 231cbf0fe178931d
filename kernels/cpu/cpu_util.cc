// Weight-row decoding (F32/BF16/F16/I8 to f32) and the argument checks shared
// by the CPU ops.
#include "kernels/cpu/cpu_util.h"

#include <cstring>

#include "core/check.h"

namespace jamba::kernels {

void RowToF32(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(s[i]);
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kI8: {
      const int8_t* s = static_cast<const int8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kI32:
      break;
  }
  JAMBA_CHECK(false) << "RowToF32: unsupported dtype " << DTypeName(dtype);
}

bool IsFloatDType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16;
}

void CheckHost(const Tensor& t, const char* op, const char* name) {
  JAMBA_CHECK(t.defined()) << op << ": " << name << " is undefined";
  JAMBA_CHECK(t.device() == Device::kCpu)
      << op << ": " << name << " " << t.DebugString() << " is not in host memory";
  JAMBA_CHECK(t.layout() == Layout::kRowMajor)
      << op << ": " << name << " " << t.DebugString()
      << " is laid out for another backend's MatMul (Backend::PrepareMatMulWeight)";
}

}  // namespace jamba::kernels
