// Add and SiluMul: elementwise f32, grid-stride. Each element is read before
// it is written, so y may alias a or b.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

__global__ void AddKernel(ElementwiseParams p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p.y[i] = p.a[i] + p.b[i];
  }
}

__global__ void SiluMulKernel(ElementwiseParams p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p.y[i] = Silu(p.a[i]) * p.b[i];
  }
}

}  // namespace

void LaunchAdd(const ElementwiseParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  AddKernel<<<GridFor(p.n, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void LaunchSiluMul(const ElementwiseParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  SiluMulKernel<<<GridFor(p.n, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
