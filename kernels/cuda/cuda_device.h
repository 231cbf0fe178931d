// CUDA device discovery, callable from code that never includes CUDA
// headers. Only built when CUDA was found at configure time (JAMBA_WITH_CUDA).
// Thread-safe (the CUDA runtime serialises the query).
#pragma once

#include <string>

namespace jamba::kernels {

// The number of CUDA devices the runtime sees. On failure (no driver, no
// device, driver too old) returns 0 and, if `error` is non-null, sets it to
// "<cudaErrorName>: <description>"; on success leaves `error` unchanged.
int CudaDeviceCount(std::string* error);

}  // namespace jamba::kernels
