// libFuzzer target: Hugging Face tokenizer.json text loaded by
// HfBpeTokenizer (spec parser, vocabulary, merges, added tokens); a loaded
// one encodes and decodes a fixed set of texts and its whole vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/tokenizer_exercise.h"
#include "router/tokenizer_hf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  auto tokenizer =
      jamba::router::HfBpeTokenizer::FromJson(json, "<|startoftext|>", "<|endoftext|>");
  if (tokenizer.ok()) jamba::fuzz::ExerciseTokenizer(**tokenizer);
  auto plain = jamba::router::HfBpeTokenizer::FromJson(json);
  if (plain.ok()) jamba::fuzz::ExerciseTokenizer(**plain);
  return 0;
}
