#include "core/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jamba {
namespace {

class HostBuffer final : public Buffer {
 public:
  HostBuffer(void* data, size_t size) : Buffer(data, size, Device::kCpu) {}
  ~HostBuffer() override { std::free(data()); }
};

// A private anonymous mapping of `mapped` bytes at `data`, unmapped on
// destruction.
class MappedBuffer final : public Buffer {
 public:
  MappedBuffer(void* data, size_t size, size_t mapped)
      : Buffer(data, size, Device::kCpu), mapped_(mapped) {}
  ~MappedBuffer() override { ::munmap(data(), mapped_); }

 private:
  size_t mapped_;
};

class ExternalBuffer final : public Buffer {
 public:
  ExternalBuffer(void* data, size_t size, Device device, std::shared_ptr<const void> owner)
      : Buffer(data, size, device), owner_(std::move(owner)) {}

 private:
  std::shared_ptr<const void> owner_;
};

// Debug and sanitizer builds poison uninitialized buffers (GCC names the
// sanitizers with macros, Clang with __has_feature).
#if defined(__has_feature)
#define JAMBA_HAS_FEATURE(x) __has_feature(x)
#else
#define JAMBA_HAS_FEATURE(x) 0
#endif
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    JAMBA_HAS_FEATURE(address_sanitizer) || JAMBA_HAS_FEATURE(thread_sanitizer)
constexpr bool kPoisonUninitialized = true;
#else
constexpr bool kPoisonUninitialized = false;
#endif
#undef JAMBA_HAS_FEATURE

// size bytes rounded up to whole cache lines (at least one), 64-byte aligned,
// filled with `fill` unless fill < 0. nullptr on exhaustion.
std::shared_ptr<Buffer> AllocateAlignedHostBuffer(size_t size, int fill) {
  constexpr size_t kAlign = 64;
  const size_t rounded = std::max(kAlign, (size + kAlign - 1) / kAlign * kAlign);
  void* data = std::aligned_alloc(kAlign, rounded);
  if (data == nullptr) return nullptr;
  if (fill >= 0) std::memset(data, fill, rounded);
  return std::make_shared<HostBuffer>(data, size);
}

// A host tensor from `allocate` (AllocateHostBuffer or its uninitialized
// form), aborting on exhaustion.
Tensor NewHostTensor(DType dtype, Shape shape, std::shared_ptr<Buffer> (*allocate)(size_t)) {
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  std::shared_ptr<Buffer> buffer = allocate(bytes);
  JAMBA_CHECK(buffer != nullptr) << "out of host memory allocating " << bytes << " bytes";
  return Tensor(dtype, std::move(shape), std::move(buffer));
}

}  // namespace

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::shared_ptr<Buffer> AllocateHostBuffer(size_t size) {
  return AllocateAlignedHostBuffer(size, 0);
}

std::shared_ptr<Buffer> AllocateUninitializedHostBuffer(size_t size) {
  return AllocateAlignedHostBuffer(size, kPoisonUninitialized ? 0xFF : -1);
}

std::shared_ptr<Buffer> AllocateLongLivedHostBuffer(size_t size) {
  constexpr size_t kHuge = size_t{2} << 20, kPage = 4096;
  if (size < kHuge) return AllocateHostBuffer(size);  // no huge page to gain
  const size_t rounded = (size + kPage - 1) / kPage * kPage;
  // Map one huge page more than needed and trim the ends so that the start
  // is 2 MiB aligned; a tail past the last 2 MiB boundary has 4 KiB pages.
  void* raw =
      ::mmap(nullptr, rounded + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHuge - 1) / kHuge * kHuge;
  if (aligned > begin) ::munmap(raw, aligned - begin);
  const size_t tail = begin + kHuge - aligned;  // mapped past aligned + rounded
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + rounded), tail);
  void* data = reinterpret_cast<void*>(aligned);
  ::madvise(data, rounded, MADV_HUGEPAGE);  // advice: without it, 4 KiB pages
  return std::make_shared<MappedBuffer>(data, size, rounded);
}

std::shared_ptr<Buffer> WrapExternalBuffer(void* data, size_t size, Device device,
                                           std::shared_ptr<const void> owner) {
  return std::make_shared<ExternalBuffer>(data, size, device, std::move(owner));
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), offset_(offset) {
  for (int64_t d : shape_) JAMBA_CHECK(d >= 0) << ShapeString(shape_);
  JAMBA_CHECK(buffer_ != nullptr);
  JAMBA_CHECK(offset_ + nbytes() <= buffer_->size())
      << "view " << ShapeString(shape_) << " at " << offset_ << " exceeds buffer of "
      << buffer_->size() << " bytes";
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  return NewHostTensor(dtype, std::move(shape), AllocateHostBuffer);
}

Tensor Tensor::Uninitialized(DType dtype, Shape shape) {
  return NewHostTensor(dtype, std::move(shape), AllocateUninitializedHostBuffer);
}

int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank();
  JAMBA_CHECK(i >= 0 && i < rank()) << "dim " << i << " of " << ShapeString(shape_);
  return shape_[i];
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  JAMBA_CHECK(rank() >= 1);
  JAMBA_CHECK(layout_ == Layout::kRowMajor) << "slice of a packed tensor " << DebugString();
  JAMBA_CHECK(0 <= begin && begin <= end && end <= shape_[0])
      << "slice [" << begin << ", " << end << ") of " << ShapeString(shape_);
  Shape shape = shape_;
  shape[0] = end - begin;
  const size_t row_bytes = shape_[0] == 0 ? 0 : nbytes() / static_cast<size_t>(shape_[0]);
  return Tensor(dtype_, std::move(shape), buffer_, offset_ + begin * row_bytes);
}

Tensor Tensor::Reshape(Shape shape) const {
  JAMBA_CHECK(layout_ == Layout::kRowMajor) << "reshape of a packed tensor " << DebugString();
  JAMBA_CHECK_EQ(NumElements(shape), numel())
      << ShapeString(shape) << " from " << ShapeString(shape_);
  return Tensor(dtype_, std::move(shape), buffer_, offset_);
}

Tensor Tensor::Clone() const {
  JAMBA_CHECK(device() == Device::kCpu);
  Tensor copy = Zeros(dtype_, shape_);
  std::memcpy(copy.raw_data(), raw_data(), nbytes());
  return copy.WithLayout(layout_);
}

Tensor Tensor::WithLayout(Layout layout) const {
  Tensor t = *this;
  t.layout_ = layout;
  return t;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), ShapeString(shape_),
                      layout_ == Layout::kBackendPacked ? " packed" : "");
}

}  // namespace jamba
