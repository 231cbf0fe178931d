// CudaAllocator: cudaMalloc with a size-keyed free list.
#include "kernels/cuda/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_check.h"

namespace jamba::kernels {
namespace {

// Sizes are rounded so that blocks are reused across similar requests:
// powers of two up to 1 MiB, then multiples of 2 MiB.
size_t RoundSize(size_t bytes) {
  constexpr size_t kSmall = size_t{1} << 20, kGranule = size_t{2} << 20;
  if (bytes <= 512) return 512;
  if (bytes <= kSmall) {
    size_t s = 512;
    while (s < bytes) s <<= 1;
    return s;
  }
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

}  // namespace

// A block owned by the allocator's cache; returns there when released.
class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(void* data, size_t size, std::shared_ptr<CudaAllocator> owner)
      : Buffer(data, size, Device::kCuda), owner_(std::move(owner)) {}
  ~CudaBuffer() override { owner_->Release(data(), size()); }

 private:
  std::shared_ptr<CudaAllocator> owner_;
};

CudaAllocator::~CudaAllocator() { EmptyCache(); }

absl::StatusOr<std::shared_ptr<Buffer>> CudaAllocator::Allocate(size_t bytes) {
  const size_t size = RoundSize(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* ptr = it->second;
      free_.erase(it);
      cached_ -= size;
      in_use_ += size;
      return std::shared_ptr<Buffer>(new CudaBuffer(ptr, size, shared_from_this()));
    }
  }
  CUDA_CHECK(cudaSetDevice(device_));
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, size);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky; clear it and retry with an empty cache
    EmptyCache();
    status = cudaMalloc(&ptr, size);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat("cudaMalloc of ", size, " bytes on device ",
                                                     device_, " failed: ", cudaGetErrorName(status),
                                                     " (", bytes_in_use(), " bytes in use)"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ += size;
  return std::shared_ptr<Buffer>(new CudaBuffer(ptr, size, shared_from_this()));
}

void CudaAllocator::Release(void* ptr, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ -= size;
  cached_ += size;
  free_.emplace(size, ptr);
}

void CudaAllocator::EmptyCache() {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.swap(free_);
    cached_ = 0;
  }
  if (blocks.empty()) return;
  CUDA_CHECK(cudaSetDevice(device_));
  for (const auto& [size, ptr] : blocks) CUDA_CHECK(cudaFree(ptr));
}

size_t CudaAllocator::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

size_t CudaAllocator::bytes_cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

}  // namespace jamba::kernels
