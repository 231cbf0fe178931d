// The --profile table of jamba-gpu-bench: single decode-shaped ops timed
// against the device's copy bandwidth.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/cuda_backend.h"

namespace jamba::bench {

// Prints the op table; copy_bw in bytes per second.
absl::Status RunProfile(kernels::CudaBackend* backend, double copy_bw);

}  // namespace jamba::bench
