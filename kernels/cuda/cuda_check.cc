// The abort paths of CUDA_CHECK and CUBLAS_CHECK.
#include "kernels/cuda/cuda_check.h"

#include <cstdio>
#include <cstdlib>

namespace jamba::kernels::internal {

void CudaFailure(const char* file, int line, const char* expr, cudaError_t error) {
  std::fprintf(stderr, "%s:%d: CUDA_CHECK(%s) failed: %s: %s\n", file, line, expr,
               cudaGetErrorName(error), cudaGetErrorString(error));
  std::abort();
}

void CublasFailure(const char* file, int line, const char* expr, cublasStatus_t status) {
  std::fprintf(stderr, "%s:%d: CUBLAS_CHECK(%s) failed: %s (%d)\n", file, line, expr,
               cublasGetStatusName(status), static_cast<int>(status));
  std::abort();
}

}  // namespace jamba::kernels::internal
