// Int8 expert weights as in Jamba-1.5's ExpertsInt8: one symmetric scale
// per output row, scale = max|w[i,:]| / 127 and q = round(w / scale), so
// w[i,:] ≈ scale[i] * q[i,:] with at most scale/2 error per element.
#pragma once

#include "core/tensor.h"

namespace jamba::model {

struct QuantizedRows {
  Tensor q;      // [R, C] I8, host
  Tensor scale;  // [R] f32, host
};

// Quantizes a host f32 matrix [R, C]. All-zero rows get scale 1.
QuantizedRows QuantizeRowsInt8(const Tensor& w);

}  // namespace jamba::model
