// CudaAllocator: plain cudaMalloc device memory behind a small cache. Freed
// blocks go to a free list keyed by their rounded size and are handed out
// again without a cudaMalloc (or its implicit device sync). All users of one
// allocator queue their work on one stream, so reuse is stream-ordered.
// Thread-safe: buffers may be released from any thread.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace jamba::kernels {

class CudaAllocator : public std::enable_shared_from_this<CudaAllocator> {
 public:
  explicit CudaAllocator(int device) : device_(device) {}
  ~CudaAllocator();
  CudaAllocator(const CudaAllocator&) = delete;
  CudaAllocator& operator=(const CudaAllocator&) = delete;

  // A device buffer of at least `bytes` (contents undefined). When
  // cudaMalloc fails the cache is emptied and the call retried once, then
  // ResourceExhausted.
  absl::StatusOr<std::shared_ptr<Buffer>> Allocate(size_t bytes);

  // cudaFrees every cached block.
  void EmptyCache();

  size_t bytes_in_use() const;
  size_t bytes_cached() const;

 private:
  friend class CudaBuffer;
  void Release(void* ptr, size_t size);

  const int device_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // rounded size -> block
  size_t in_use_ = 0;
  size_t cached_ = 0;
};

}  // namespace jamba::kernels
