#include "tests/router/spm_reference.h"

#include <sentencepiece_processor.h>

namespace jamba::router::testing {

struct SpmReference::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SpmReference::SpmReference() : impl_(new Impl) {}
SpmReference::~SpmReference() = default;

bool SpmReference::Load(const std::string& serialized, std::string* error) {
  const sentencepiece::util::Status status = impl_->processor.LoadFromSerializedProto(serialized);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

std::vector<int> SpmReference::Encode(const std::string& text) const {
  std::vector<int> ids;
  impl_->processor.Encode(text, &ids).IgnoreError();
  return ids;
}

std::string SpmReference::Decode(const std::vector<int>& ids) const {
  std::string text;
  impl_->processor.Decode(ids, &text).IgnoreError();
  return text;
}

int SpmReference::bos_id() const { return impl_->processor.bos_id(); }
int SpmReference::eos_id() const { return impl_->processor.eos_id(); }

}  // namespace jamba::router::testing
