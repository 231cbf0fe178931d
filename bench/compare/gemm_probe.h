// GemmProbe: the GFLOP/s of a square GEMM y = x · wᵀ on a backend, with f32
// and bf16 weights prepared as the model loads them, for reading a prefill's
// rate against the machine's GEMM peak at the same moment. The VM this runs
// on drifts by up to 1.8x between minutes, so a peak probed a minute away
// from the prefill it divides says more about the minute than the engine.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/backend.h"

namespace jamba {

// x [M, K] and w [N, K] (f32, and w also rounded to bf16) with uniform
// random values in [-1, 1), fixed seed.
struct MatMulOperands {
  Tensor x, w, w_bf16;
};
MatMulOperands RandomMatMulOperands(int64_t M, int64_t N, int64_t K);

class GemmProbe {
 public:
  // `size` x `size` x `size`, on `backend` (which must outlive the probe).
  GemmProbe(kernels::Backend* backend, int64_t size);

  // The best GFLOP/s of `calls` calls with each weight dtype (one warm-up
  // call each first), whichever dtype is faster.
  double BestGflops(int calls = 2);

 private:
  kernels::Backend* backend_;
  int64_t size_;
  Tensor x_, w_, w_bf16_, y_;
};

}  // namespace jamba
