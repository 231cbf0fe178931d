// CreateBackend: picks the backend for a BackendKind. JAMBA_WITH_CUDA (set by
// kernels/CMakeLists.txt when nvcc was found) is read only here and in the
// tests' backend list.
#include "kernels/backend.h"

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu_fast/fast_cpu_backend.h"

#if defined(JAMBA_WITH_CUDA)
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_device.h"
#endif

namespace jamba::kernels {
namespace {

// The CUDA backend, or FailedPrecondition saying why there is none.
// `*device_found` tells whether a CUDA device answered.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(bool* device_found) {
  *device_found = false;
#if defined(JAMBA_WITH_CUDA)
  std::string error;
  const int count = CudaDeviceCount(&error);
  if (count == 0) {
    return absl::FailedPreconditionError(
        error.empty()
            ? std::string("no CUDA device found: cudaGetDeviceCount returned 0")
            : absl::StrCat("no CUDA device found: cudaGetDeviceCount failed with ", error));
  }
  *device_found = true;
  return CreateCudaBackend(CudaBackendOptions());
#else
  return absl::FailedPreconditionError(
      "this build has no CUDA backend (configure with nvcc available)");
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind) {
  bool device_found = false;
  switch (kind) {
    case BackendKind::kCpu:
      return CreateFastCpuBackend();
    case BackendKind::kCpuReference:
      return CreateCpuBackend();
    case BackendKind::kCuda:
      return MakeCudaBackend(&device_found);
    case BackendKind::kAuto: {
#if defined(JAMBA_WITH_CUDA)
      absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend(&device_found);
      if (cuda.ok()) return cuda;
      if (!device_found) {
        std::fprintf(stderr, "jamba: no CUDA device found, using the CPU backend\n");
      } else {
        std::fprintf(stderr, "jamba: %s, using the CPU backend\n",
                     std::string(cuda.status().message()).c_str());
      }
#endif
      return CreateFastCpuBackend();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("CreateBackend: unknown BackendKind ", static_cast<int>(kind)));
}

}  // namespace jamba::kernels
