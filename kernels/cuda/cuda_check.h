// CUDA_CHECK and CUBLAS_CHECK: a failing CUDA or cuBLAS call is fatal (it
// poisons the context), so both abort with file:line and the error's name.
// Plain C++ with no absl, usable from .cu and .cc files alike.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace jamba::kernels::internal {

[[noreturn]] void CudaFailure(const char* file, int line, const char* expr, cudaError_t error);
[[noreturn]] void CublasFailure(const char* file, int line, const char* expr,
                                cublasStatus_t status);

}  // namespace jamba::kernels::internal

#define CUDA_CHECK(expr)                                                                     \
  do {                                                                                       \
    const cudaError_t jamba_cuda_error_ = (expr);                                            \
    if (jamba_cuda_error_ != cudaSuccess)                                                    \
      ::jamba::kernels::internal::CudaFailure(__FILE__, __LINE__, #expr, jamba_cuda_error_); \
  } while (0)

#define CUBLAS_CHECK(expr)                                                                        \
  do {                                                                                            \
    const cublasStatus_t jamba_cublas_status_ = (expr);                                           \
    if (jamba_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::jamba::kernels::internal::CublasFailure(__FILE__, __LINE__, #expr, jamba_cublas_status_); \
  } while (0)

// After a kernel launch: reports launch-configuration errors at once.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
