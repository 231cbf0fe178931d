// libFuzzer target: SentencePiece model files (tokenizer.model) parsed by
// the native ModelProto reader and loaded as a tokenizer; a loaded one
// encodes and decodes a fixed set of texts and every id of its vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/tokenizer_exercise.h"
#include "router/tokenizer_sentencepiece.h"
#include "router/tokenizer_sp_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto proto = jamba::router::ParseSpModelProto(bytes);
  auto tokenizer = jamba::router::SentencePieceTokenizer::FromSerialized(bytes);
  if (tokenizer.ok()) jamba::fuzz::ExerciseTokenizer(**tokenizer);
  return 0;
}
