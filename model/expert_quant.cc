#include "model/expert_quant.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace jamba::model {

QuantizedRows QuantizeRowsInt8(const Tensor& w) {
  JAMBA_CHECK(w.rank() == 2 && w.dtype() == DType::kF32 && w.device() == Device::kCpu)
      << "QuantizeRowsInt8: " << w.DebugString() << " (want a host f32 matrix)";
  const int64_t R = w.dim(0), C = w.dim(1);
  QuantizedRows out{Tensor::Zeros(DType::kI8, {R, C}), Tensor::Zeros(DType::kF32, {R})};
  const float* wd = w.data<float>();  // [R, C]
  int8_t* q = out.q.data<int8_t>();   // [R, C]
  for (int64_t r = 0; r < R; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::abs(wd[r * C + c]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    out.scale.data<float>()[r] = s;
    for (int64_t c = 0; c < C; ++c) {
      const float v = std::nearbyint(wd[r * C + c] / s);
      q[r * C + c] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
  return out;
}

}  // namespace jamba::model
