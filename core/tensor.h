// Tensor: a dtype, a row-major shape in PyTorch dimension order, and a view
// into a reference-counted Buffer (owned memory or a memory-mapped file).
//
// Tensors are cheap to copy; copies share the buffer. Views slice only the
// outermost dimension, so every tensor is contiguous. Not thread-safe for
// concurrent writes to the same elements; the ops define who writes what.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "core/check.h"
#include "core/dtype.h"

namespace jamba {

enum class Device : uint8_t { kCpu, kCuda };

using Shape = absl::InlinedVector<int64_t, 4>;

// How a tensor's elements lie in its buffer. Every tensor is row-major
// except weight matrices a backend has rearranged for its own MatMul
// (Backend::PrepareMatMulWeight): those hold the same elements in the same
// number of bytes, in an order only that backend's ops read. They cannot be
// sliced or reshaped, and every other op CHECK-fails on them.
enum class Layout : uint8_t { kRowMajor, kBackendPacked };

// Number of elements of a shape (1 for rank 0).
int64_t NumElements(const Shape& shape);
std::string ShapeString(const Shape& shape);

// A block of memory on one device. Subclasses own it or borrow it.
class Buffer {
 public:
  Buffer(void* data, size_t size, Device device) : data_(data), size_(size), device_(device) {}
  virtual ~Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t size_;
  Device device_;
};

// Zero-filled, 64-byte aligned host memory. Returns nullptr on exhaustion.
std::shared_ptr<Buffer> AllocateHostBuffer(size_t size);

// As AllocateHostBuffer, without the zero fill: for memory that is written
// whole before it is read. Debug and sanitizer builds fill it with 0xFF
// bytes (NaN as f32, -1 as an integer), so a read before the write shows.
std::shared_ptr<Buffer> AllocateUninitializedHostBuffer(size_t size);

// Zero-filled host memory for a long-lived tensor (a weight rearranged at
// load). From 2 MiB on, its own anonymous mapping, 2 MiB aligned and on
// transparent huge pages where the kernel allows them (madvise), so that
// filling it takes far fewer page faults and reading it fewer TLB misses;
// smaller sizes as AllocateHostBuffer. Returns nullptr on exhaustion.
std::shared_ptr<Buffer> AllocateLongLivedHostBuffer(size_t size);

// Borrowed memory kept alive by `owner` (e.g. a mapped file).
std::shared_ptr<Buffer> WrapExternalBuffer(void* data, size_t size, Device device,
                                           std::shared_ptr<const void> owner);

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kF32;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kI32;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kI8;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset = 0);

  // A zero-filled host tensor. Aborts if the host is out of memory: callers
  // that size allocations from untrusted input must bound them first.
  static Tensor Zeros(DType dtype, Shape shape);
  // A host tensor with unspecified contents (AllocateUninitializedHostBuffer),
  // for one that is written whole before it is read. Aborts as Zeros does.
  static Tensor Uninitialized(DType dtype, Shape shape);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return buffer_ ? buffer_->device() : Device::kCpu; }
  const Shape& shape() const { return shape_; }
  Layout layout() const { return layout_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // dim(-1) is the last dimension.
  int64_t dim(int i) const;
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }

  void* raw_data() const { return static_cast<char*>(buffer_->data()) + offset_; }
  template <typename T>
  T* data() const {
    JAMBA_CHECK(dtype_ == DTypeOf<T>::value) << "tensor is " << DTypeName(dtype_);
    return static_cast<T*>(raw_data());
  }

  // Rows [begin, end) of the outermost dimension, sharing the buffer.
  // REQUIRES: layout() == kRowMajor, as for Reshape.
  Tensor Slice(int64_t begin, int64_t end) const;
  // The same elements with another shape of equal size.
  Tensor Reshape(Shape shape) const;
  // A deep copy into fresh host memory, in the same layout.
  Tensor Clone() const;
  // The same bytes, marked as laid out in `layout` (for the backend that
  // rearranged them).
  Tensor WithLayout(Layout layout) const;

  std::string DebugString() const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  Layout layout_ = Layout::kRowMajor;
};

}  // namespace jamba
