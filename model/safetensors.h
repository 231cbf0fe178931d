// SafetensorsFile: one .safetensors file, memory-mapped read-only and
// validated on Open (header size, dtypes, shapes, offsets, overlaps).
//
// Get returns views over the mapping in the on-disk dtype; the mapping is
// reference-counted, so tensors outlive the SafetensorsFile. Views are
// read-only memory: writing through them faults. Thread-safe after Open.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace jamba::model {

class SafetensorsFile {
 public:
  // Header limit, as in the reference implementation.
  static constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

  struct TensorInfo {
    DType dtype;
    Shape shape;
    uint64_t begin;  // byte offsets into the data section
    uint64_t end;
  };

  // Maps and validates `path`; errors name the file and the tensor.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;
  bool Has(absl::string_view name) const { return tensors_.find(name) != tensors_.end(); }
  // The tensor's metadata, or nullptr when absent.
  const TensorInfo* Find(absl::string_view name) const;
  // A view of the tensor in its on-disk dtype, or an aligned copy when the
  // data is not aligned to its element size. NotFound names the tensor.
  absl::StatusOr<Tensor> Get(absl::string_view name) const;

  // Tells the kernel this process no longer needs the mapped pages that lie
  // wholly inside t's bytes (madvise MADV_DONTNEED: the mapping is read-only,
  // so a later read just faults them in from the file again). For weights
  // that were copied out (to a device, or into another layout), so that the
  // process does not hold them twice. Does nothing for tensors that are not
  // views of this file.
  void DropPages(const Tensor& t) const;

 private:
  SafetensorsFile() = default;
  absl::Status ParseHeader(absl::string_view header, uint64_t data_size);

  std::string path_;
  std::shared_ptr<Buffer> mapping_;  // the whole file
  uint64_t data_start_ = 0;          // 8 + header length
  std::map<std::string, TensorInfo, std::less<>> tensors_;
};

}  // namespace jamba::model
