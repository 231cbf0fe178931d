// Helpers shared by the CudaBackend's .cc files: argument checks and the
// DType-to-kernel-type mapping.
#pragma once

#include <initializer_list>

#include "core/check.h"
#include "core/tensor.h"
#include "kernels/cuda/ops.h"

namespace jamba::kernels {

// CHECKs that `t` is defined and in device memory.
inline void CheckCuda(const Tensor& t, const char* op, const char* name) {
  JAMBA_CHECK(t.defined()) << op << ": " << name << " is undefined";
  JAMBA_CHECK(t.device() == Device::kCuda)
      << op << ": " << name << " " << t.DebugString() << " is not in CUDA device memory";
}

// CHECKs that every defined tensor of `tensors` is f32.
inline void CheckF32(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    JAMBA_CHECK(!t->defined() || t->dtype() == DType::kF32)
        << op << ": every tensor must be f32, got " << t->DebugString();
  }
}

// F32, BF16 or F16 as the kernels' WeightType; CHECKs otherwise.
inline cuda::WeightType ToWeightType(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return cuda::WeightType::kBF16;
    case DType::kF16:
      return cuda::WeightType::kF16;
    case DType::kF32:
      return cuda::WeightType::kF32;
    case DType::kI8:
      return cuda::WeightType::kI8;
    case DType::kI32:
      break;
  }
  JAMBA_CHECK(false) << "not a float dtype: " << DTypeName(dtype);
  return cuda::WeightType::kF32;
}

}  // namespace jamba::kernels
