// CudaDeviceCount: asks the CUDA runtime how many devices it sees. A plain
// .cc compiled by the host compiler and linked to CUDA::cudart.
#include "kernels/cuda/cuda_device.h"

#include <cuda_runtime_api.h>

namespace jamba::kernels {

int CudaDeviceCount(std::string* error) {
  // cudaGetDeviceCount leaves the count unwritten on error, so start at 0.
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    if (error != nullptr) {
      *error = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    }
    return 0;
  }
  return count;
}

}  // namespace jamba::kernels
