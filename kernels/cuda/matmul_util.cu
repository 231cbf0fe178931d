// MatMul helpers around cuBLAS: f32 activations rounded to bf16/f16 for the
// fast mixed path, low-precision weights widened to f32 for the parity path,
// and the bias added after the GEMM.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_util.cuh"

namespace jamba::kernels::cuda {
namespace {

__global__ void ConvertKernel(ConvertParams p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if (p.dst_type == WeightType::kF16) {
      static_cast<__half*>(p.dst)[i] = __float2half_rn(p.src[i]);
    } else {
      static_cast<__nv_bfloat16*>(p.dst)[i] = __float2bfloat16_rn(p.src[i]);
    }
  }
}

__global__ void DequantKernel(DequantParams p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p.dst[i] = LoadWeight(p.src, p.src_type, i);
  }
}

__global__ void BiasAddKernel(BiasAddParams p) {
  const int64_t n = p.rows * p.cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p.y[i] += p.bias[i % p.cols];
  }
}

}  // namespace

void LaunchConvertFromF32(const ConvertParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  ConvertKernel<<<GridFor(p.n, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void LaunchDequantToF32(const DequantParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  DequantKernel<<<GridFor(p.n, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void LaunchBiasAdd(const BiasAddParams& p, cudaStream_t stream) {
  if (p.rows * p.cols == 0) return;
  BiasAddKernel<<<GridFor(p.rows * p.cols, 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace jamba::kernels::cuda
