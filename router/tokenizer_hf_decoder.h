// The decoder chain of a Hugging Face tokenizer.json (HF `decode_chain`):
// token strings in, text out. ByteFallback gives each "<0xXX>" token's raw
// byte, so the text may hold incomplete UTF-8 (HF instead replaces a whole
// ill-formed run of byte tokens with U+FFFD, one per byte; Tokenizer::Decode
// replaces only the ill-formed bytes).
#pragma once

#include <string>
#include <vector>

#include "router/tokenizer_hf_spec.h"

namespace jamba::router {

std::string ApplyHfDecoder(const HfTokenizerSpec& spec, std::vector<std::string> tokens);

}  // namespace jamba::router
