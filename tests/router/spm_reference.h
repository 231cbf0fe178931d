// A thin wrapper over libsentencepiece for the parity test. Its .cc is the
// only file that includes <sentencepiece_processor.h>, whose
// `namespace absl { using std::string_view; }` clashes with Abseil, so this
// header uses std types only. The parity test binary must never link
// protobuf (see tools/TOKENIZER.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace jamba::router::testing {

class SpmReference {
 public:
  SpmReference();
  ~SpmReference();
  // Loads a serialized model; false (with `error`) on failure.
  bool Load(const std::string& serialized, std::string* error);
  std::vector<int> Encode(const std::string& text) const;
  std::string Decode(const std::vector<int>& ids) const;
  int bos_id() const;
  int eos_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamba::router::testing
