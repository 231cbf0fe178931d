#include "router/tokenizer_hf.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "router/tokenizer_bpe.h"
#include "router/tokenizer_hf_decoder.h"
#include "router/tokenizer_util.h"

namespace jamba::router {
namespace {

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Byte length of the run of whitespace characters that ends `s`.
size_t TrailingWhitespace(absl::string_view s) {
  size_t run_start = 0;
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = std::max<size_t>(1, Utf8CharLength(s.substr(pos)));
    if (!IsUnicodeWhitespace(DecodeUtf8Char(s.substr(pos), n))) run_start = pos + n;
    pos += n;
  }
  return s.size() - run_start;
}

// Byte length of the run of whitespace characters that starts `s`.
size_t LeadingWhitespace(absl::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t n = std::max<size_t>(1, Utf8CharLength(s.substr(pos)));
    if (!IsUnicodeWhitespace(DecodeUtf8Char(s.substr(pos), n))) break;
    pos += n;
  }
  return pos;
}

}  // namespace

void HfBpeTokenizer::AddedMatcher::Add(std::string text, size_t index) {
  if (text.empty()) return;
  first_byte[static_cast<unsigned char>(text[0])] = true;
  max_length = std::max(max_length, text.size());
  by_text.emplace(std::move(text), index);
}

size_t HfBpeTokenizer::AddedMatcher::Match(absl::string_view s, size_t* index) const {
  if (s.empty() || !first_byte[static_cast<unsigned char>(s[0])]) return 0;
  for (size_t n = std::min(s.size(), max_length); n > 0; --n) {
    const auto it = by_text.find(s.substr(0, n));
    if (it != by_text.end()) {
      *index = it->second;
      return n;
    }
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<HfBpeTokenizer>> HfBpeTokenizer::Load(const std::string& path,
                                                                     const std::string& bos_token,
                                                                     const std::string& eos_token) {
  ASSIGN_OR_RETURN(const std::string json, ReadFileToString(path));
  auto tokenizer = FromJson(json, bos_token, eos_token);
  if (!tokenizer.ok()) {
    const absl::Status& s = tokenizer.status();
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<HfBpeTokenizer>> HfBpeTokenizer::FromJson(
    absl::string_view json, const std::string& bos_token, const std::string& eos_token) {
  ASSIGN_OR_RETURN(HfTokenizerSpec spec, ParseHfTokenizerJson(json));
  std::unique_ptr<HfBpeTokenizer> tokenizer(new HfBpeTokenizer(std::move(spec)));
  RETURN_IF_ERROR(tokenizer->Init(bos_token, eos_token));
  return tokenizer;
}

absl::Status HfBpeTokenizer::Init(const std::string& bos_token, const std::string& eos_token) {
  int32_t size = 0;
  for (const auto& [token, id] : spec_.vocab) size = std::max(size, id + 1);
  for (const HfAddedToken& t : spec_.added_tokens) size = std::max(size, t.id + 1);
  id_to_token_.assign(size, "");
  special_.assign(size, false);
  for (const auto& [token, id] : spec_.vocab) {
    vocab_[token] = id;
    id_to_token_[id] = token;
  }
  for (size_t rank = 0; rank < spec_.merges.size(); ++rank) {
    const auto& [left, right] = spec_.merges[rank];
    const auto l = vocab_.find(left);
    const auto r = vocab_.find(right);
    const auto merged = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || merged == vocab_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: merge ", rank, " (\"", left,
                                                     "\" \"", right, "\") is not in the vocab"));
    }
    merges_.emplace(PairKey(l->second, r->second),
                    std::make_pair(static_cast<int32_t>(rank), merged->second));
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(absl::StrFormat("<0x%02X>", b));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  for (size_t i = 0; i < spec_.added_tokens.size(); ++i) {
    const HfAddedToken& t = spec_.added_tokens[i];
    id_to_token_[t.id] = t.content;
    special_[t.id] = t.special;
    if (t.normalized) {
      normalized_added_.Add(Normalize(t.content), i);
    } else {
      raw_added_.Add(t.content, i);
    }
  }
  auto find_id = [this](const std::string& token, const char* what) -> absl::StatusOr<int32_t> {
    if (token.empty()) return -1;
    for (const HfAddedToken& t : spec_.added_tokens) {
      if (t.content == token) return t.id;
    }
    if (const auto it = vocab_.find(token); it != vocab_.end()) return it->second;
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer.json: ", what, " token \"", token, "\" is not in the vocabulary"));
  };
  ASSIGN_OR_RETURN(unk_id_, find_id(spec_.unk_token, "model.unk_token"));
  ASSIGN_OR_RETURN(bos_id_, find_id(bos_token.empty() ? spec_.template_bos : bos_token, "BOS"));
  ASSIGN_OR_RETURN(eos_id_, find_id(eos_token, "EOS"));
  return absl::OkStatus();
}

std::vector<HfBpeTokenizer::Segment> HfBpeTokenizer::SplitAdded(absl::string_view text,
                                                                const AddedMatcher& matcher) const {
  std::vector<Segment> out;
  size_t done = 0;  // end of the previous match
  for (size_t pos = 0; pos < text.size();) {
    size_t index = 0;
    const size_t n = matcher.Match(text.substr(pos), &index);
    if (n == 0) {
      ++pos;
      continue;
    }
    const HfAddedToken& t = spec_.added_tokens[index];
    size_t start = pos;
    size_t stop = pos + n;
    if (t.lstrip) start = pos - TrailingWhitespace(text.substr(done, pos - done));
    if (t.rstrip) stop += LeadingWhitespace(text.substr(stop));
    if (done < start) out.push_back(Segment{-1, done, start});
    out.push_back(Segment{t.id, start, stop});
    done = pos = stop;
  }
  if (done < text.size()) out.push_back(Segment{-1, done, text.size()});
  return out;
}

std::string HfBpeTokenizer::Normalize(absl::string_view text) const {
  std::string s(text);
  for (const HfNormalizerStep& step : spec_.normalizer) {
    if (step.kind == HfNormalizerStep::Kind::kReplace) {
      s = absl::StrReplaceAll(s, {{step.pattern, step.content}});
    } else if (!s.empty()) {
      s = step.content + s;
    }
  }
  return s;
}

void HfBpeTokenizer::EncodeSegment(absl::string_view text, bool first,
                                   std::vector<int32_t>* ids) const {
  if (!spec_.has_pre_tokenizer) return EncodeWord(text, ids);
  const HfMetaspace& m = spec_.pre_tokenizer;
  std::string s = absl::StrReplaceAll(text, {{" ", m.replacement}});
  const bool prepend = m.prepend_scheme == HfPrependScheme::kAlways ||
                       (m.prepend_scheme == HfPrependScheme::kFirst && first);
  if (prepend && !absl::StartsWith(s, m.replacement)) s = m.replacement + s;
  if (!m.split) return EncodeWord(s, ids);
  // Split before every replacement character (MergedWithNext).
  size_t begin = 0;
  for (size_t pos = s.find(m.replacement, 1); pos != std::string::npos;
       pos = s.find(m.replacement, pos + 1)) {
    EncodeWord(absl::string_view(s).substr(begin, pos - begin), ids);
    begin = pos;
  }
  EncodeWord(absl::string_view(s).substr(begin), ids);
}

void HfBpeTokenizer::EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (spec_.ignore_merges) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) return ids->push_back(it->second);
  }
  std::vector<BpeSymbol> symbols;
  std::optional<BpeSymbol> unk;  // pending (possibly fused) unknown run
  for (size_t pos = 0; pos < word.size();) {
    const size_t n = std::max<size_t>(1, Utf8CharLength(word.substr(pos)));
    const absl::string_view c = word.substr(pos, n);
    const auto it = vocab_.find(c);
    bool bytes_known = spec_.byte_fallback;
    for (size_t i = 0; bytes_known && i < n; ++i) {
      bytes_known = byte_ids_[static_cast<unsigned char>(c[i])] >= 0;
    }
    if (it != vocab_.end() || bytes_known) {
      if (unk.has_value()) symbols.push_back(*unk);
      unk.reset();
    }
    if (it != vocab_.end()) {
      symbols.push_back(BpeSymbol{pos, pos + n, it->second, false});
    } else if (bytes_known) {
      for (size_t i = 0; i < n; ++i) {
        symbols.push_back(
            BpeSymbol{pos + i, pos + i + 1, byte_ids_[static_cast<unsigned char>(c[i])]});
      }
    } else if (unk_id_ >= 0) {
      if (unk.has_value() && spec_.fuse_unk) {
        unk->end = pos + n;
      } else {
        if (unk.has_value()) symbols.push_back(*unk);
        unk = BpeSymbol{pos, pos + n, unk_id_, false};
      }
    }
    pos += n;
  }
  if (unk.has_value()) symbols.push_back(*unk);
  const BpeMergeFn merge = [this](const BpeSymbol& l,
                                  const BpeSymbol& r) -> std::optional<BpeMerge> {
    const auto it = merges_.find(PairKey(l.id, r.id));
    if (it == merges_.end()) return std::nullopt;
    return BpeMerge{static_cast<double>(it->second.first), it->second.second};
  };
  for (const BpeSymbol& s : BpeMergeAll(std::move(symbols), merge)) ids->push_back(s.id);
}

absl::StatusOr<std::vector<int32_t>> HfBpeTokenizer::Encode(absl::string_view text,
                                                            bool add_bos) const {
  if (const size_t bad = FirstInvalidUtf8Byte(text); bad != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")"));
  }
  std::vector<int32_t> ids;
  if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
  for (const Segment& raw : SplitAdded(text, raw_added_)) {
    if (raw.token >= 0) {
      ids.push_back(raw.token);
      continue;
    }
    const std::string normalized = Normalize(text.substr(raw.begin, raw.end - raw.begin));
    for (const Segment& seg : SplitAdded(normalized, normalized_added_)) {
      if (seg.token >= 0) {
        ids.push_back(seg.token);
      } else {
        EncodeSegment(absl::string_view(normalized).substr(seg.begin, seg.end - seg.begin),
                      raw.begin == 0 && seg.begin == 0, &ids);
      }
    }
  }
  return ids;
}

absl::StatusOr<std::string> HfBpeTokenizer::DecodeBytes(absl::Span<const int32_t> ids) const {
  RETURN_IF_ERROR(CheckTokenIds(ids, vocab_size()));
  std::vector<std::string> tokens;
  for (const int32_t id : ids) {
    if (!special_[id]) tokens.push_back(id_to_token_[id]);
  }
  return ApplyHfDecoder(spec_, std::move(tokens));
}

absl::StatusOr<std::string> HfBpeTokenizer::IdToPiece(int32_t id) const {
  RETURN_IF_ERROR(CheckTokenIds({id}, vocab_size()));
  return id_to_token_[id];
}

bool HfBpeTokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

}  // namespace jamba::router
