// libFuzzer target: arbitrary bytes as text to encode and as token ids to
// decode, with the bundled tiny model's SentencePiece and Hugging Face
// tokenizers (tests/testdata/tiny_model). The first byte splits the input
// into the text and the ids.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/tokenizer_exercise.h"
#include "router/tokenizer_hf.h"
#include "router/tokenizer_sentencepiece.h"

namespace {

std::unique_ptr<jamba::router::Tokenizer> sp, hf;

template <typename T>
std::unique_ptr<jamba::router::Tokenizer> OrDie(T loaded) {
  if (!loaded.ok()) {
    std::fprintf(stderr, "loading a tokenizer: %s\n", loaded.status().ToString().c_str());
    std::abort();
  }
  return *std::move(loaded);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string dir = jamba::fuzz::SourceDir() + "/tests/testdata/tiny_model";
  sp = OrDie(jamba::router::SentencePieceTokenizer::Load(dir + "/tokenizer.model"));
  hf = OrDie(jamba::router::HfBpeTokenizer::Load(dir + "/tokenizer.json", "<|startoftext|>",
                                                 "<|endoftext|>"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = std::min<size_t>(rest.size(), data[0] * 4u);
  const absl::string_view ids = rest.substr(0, split);
  const absl::string_view text = rest.substr(split);
  jamba::fuzz::EncodeDecode(*sp, text, ids);
  jamba::fuzz::EncodeDecode(*hf, text, ids);
  return 0;
}
