// Checkpoint: a Hugging Face Jamba checkpoint directory (config.json plus
// model.safetensors, or model-0000X-of-0000N.safetensors with
// model.safetensors.index.json), memory-mapped.
//
// Tensors come back as views over the mapping in their on-disk dtype; no
// byte is read until it is used, so a process that touches only some
// tensors (an expert shard) pays memory only for those. Legacy names of the
// first Jamba-v0.1 upload resolve transparently. Thread-safe after Open.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "model/config.h"

namespace jamba::model {

class SafetensorsFile;

class Checkpoint {
 public:
  // Opens and validates every file; errors name the file and the tensor.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);
  ~Checkpoint();

  const JambaConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }

  // True when `name` (or a legacy alias of it) is present.
  bool Has(absl::string_view name) const;
  // The tensor in its on-disk dtype (F32, BF16 or F16). NotFound names the
  // tensor; InvalidArgument when the shape differs from `shape`.
  absl::StatusOr<Tensor> Get(absl::string_view name, const Shape& shape) const;
  // The same, converted to f32 (zero-copy when already f32 and aligned).
  absl::StatusOr<Tensor> GetF32(absl::string_view name, const Shape& shape) const;
  // All canonical tensor names, sorted.
  std::vector<std::string> TensorNames() const;
  // For a tensor from Get that has been copied out: lets the kernel drop
  // this process's mapped pages of it (SafetensorsFile::DropPages).
  void DropPages(const Tensor& t) const;

 private:
  Checkpoint() = default;

  std::string dir_;
  JambaConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  // canonical (HF) name -> (file index, name as stored)
  std::map<std::string, std::pair<size_t, std::string>, std::less<>> index_;
};

}  // namespace jamba::model
