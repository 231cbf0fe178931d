#include "fuzz/tokenizer_exercise.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "router/detokenizer.h"
#include "router/tokenizer_util.h"

namespace jamba::fuzz {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckIds(const router::Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) Check(id >= 0 && id < tokenizer.vocab_size());
}

void Detokenize(const router::Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  router::Detokenizer detokenizer(&tokenizer);
  std::string text;
  for (int32_t id : ids) text += detokenizer.Add(id);
  text += detokenizer.Flush();
  Check(router::IsValidUtf8(text));
}

}  // namespace

void EncodeDecode(const router::Tokenizer& tokenizer, absl::string_view text,
                  absl::string_view ids_bytes) {
  for (bool add_bos : {true, false}) {
    auto ids = tokenizer.Encode(text, add_bos);
    Check(ids.ok() == router::IsValidUtf8(text));
    if (!ids.ok()) continue;
    CheckIds(tokenizer, *ids);
    auto decoded = tokenizer.Decode(*ids);
    Check(decoded.ok() && router::IsValidUtf8(*decoded));
    Detokenize(tokenizer, *ids);
  }
  std::vector<int32_t> ids(ids_bytes.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), ids_bytes.data(), ids.size() * 4);
  auto bytes = tokenizer.DecodeBytes(ids);
  auto decoded = tokenizer.Decode(ids);
  Check(bytes.ok() == decoded.ok());
  if (decoded.ok()) Check(router::IsValidUtf8(*decoded));
  Detokenize(tokenizer, ids);
  for (int32_t id : ids) {
    Check(router::IsValidUtf8(tokenizer.TokenText(id)));
    auto piece = tokenizer.IdToPiece(id);
    Check(piece.ok() == (id >= 0 && id < tokenizer.vocab_size()));
    (void)tokenizer.IsSpecial(id);
  }
}

void ExerciseTokenizer(const router::Tokenizer& tokenizer) {
  Check(tokenizer.vocab_size() > 0);
  static const char* const kTexts[] = {
      "",
      " ",
      "Hello world",
      "  two  spaces\tand\ttabs\n",
      "\xE2\x96\x81leading marker",
      "caf\xC3\xA9 \xE2\x82\xAC 12345 \xF0\x9F\x98\x80",
      "<s></s><unk><pad>",
      "a\0b",
  };
  const int32_t n = std::min<int32_t>(tokenizer.vocab_size(), 600);
  std::vector<int32_t> all(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  all.push_back(-1);
  all.push_back(tokenizer.vocab_size());
  const absl::string_view all_bytes(reinterpret_cast<const char*>(all.data()), all.size() * 4);
  for (const char* text : kTexts) EncodeDecode(tokenizer, text, all_bytes);
  EncodeDecode(tokenizer, absl::string_view("a\0b", 3), {});
  // Every id alone, and all valid ones together.
  all.resize(static_cast<size_t>(n));
  for (int32_t id : all) {
    auto one = tokenizer.DecodeBytes({&id, 1});
    Check(one.ok());
  }
  auto together = tokenizer.Decode(all);
  Check(together.ok() && router::IsValidUtf8(*together));
}

}  // namespace jamba::fuzz
