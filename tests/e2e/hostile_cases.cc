#include "tests/e2e/hostile_cases.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jamba::testing {
namespace {

using grpc::StatusCode;
using jamba::internal::v1::ExpertRequest;
using jamba::v1::GenerateRequest;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

PublicCase Gen(std::string name, std::function<void(GenerateRequest*)> mutate,
               std::string message_part, PublicRpc rpc = PublicRpc::kGenerate,
               StatusCode code = StatusCode::INVALID_ARGUMENT) {
  return PublicCase{std::move(name), rpc, std::move(mutate), code, std::move(message_part)};
}

void Ids(GenerateRequest* r, std::vector<int32_t> ids) {
  r->mutable_token_ids()->clear_ids();
  for (int32_t id : ids) r->mutable_token_ids()->add_ids(id);
}

jamba::v1::SamplingParams* S(GenerateRequest* r) { return r->mutable_sampling(); }

ExpertCase Bad(std::string name, std::function<void(ExpertRequest*)> mutate,
               std::string message_part, StatusCode code = StatusCode::INVALID_ARGUMENT) {
  return ExpertCase{std::move(name), std::move(mutate), code, std::move(message_part)};
}

jamba::internal::v1::TensorProto* X(ExpertRequest* r) { return r->mutable_groups(0)->mutable_x(); }

void Shape(ExpertRequest* r, std::vector<int64_t> shape) {
  X(r)->clear_shape();
  for (int64_t d : shape) X(r)->add_shape(d);
}

}  // namespace

std::vector<PublicCase> PublicHostileCases(const HostileLimits& l) {
  const int32_t V = l.vocab_size;
  const int64_t C = l.context_limit;
  std::vector<PublicCase> cases = {
      Gen(
          "no input", [](GenerateRequest* r) { r->clear_input(); }, "input"),
      Gen(
          "empty token_ids", [](GenerateRequest* r) { Ids(r, {}); }, "input"),
      Gen(
          "empty text without BOS",
          [](GenerateRequest* r) {
            r->set_text("");
            r->set_add_bos(false);
          },
          "input"),
      Gen(
          "token id = vocab_size",
          [V](GenerateRequest* r) {
            Ids(r, {1, V});
          },
          "token_ids.ids[1]"),
      Gen(
          "token id -1", [](GenerateRequest* r) { Ids(r, {-1}); }, "token_ids.ids[0]"),
      Gen(
          "token id INT32_MAX",
          [](GenerateRequest* r) {
            Ids(r, {1, 5, std::numeric_limits<int32_t>::max()});
          },
          "token_ids.ids[2]"),
      Gen(
          "token id INT32_MIN",
          [](GenerateRequest* r) { Ids(r, {std::numeric_limits<int32_t>::min()}); },
          "token_ids.ids[0]"),
      Gen(
          "token ids = context limit",
          [C](GenerateRequest* r) { Ids(r, std::vector<int32_t>(static_cast<size_t>(C), 5)); },
          "context limit"),
      Gen(
          "100k token ids", [](GenerateRequest* r) { Ids(r, std::vector<int32_t>(100000, 5)); },
          "context limit"),
      Gen(
          "text longer than the context",
          [C](GenerateRequest* r) {
            std::string text;
            for (int64_t i = 0; i < 4 * C; ++i) absl::StrAppend(&text, "word", i, " ");
            r->set_text(text);
          },
          "context limit"),
      Gen(
          "text over max_text_bytes",
          [](GenerateRequest* r) { r->set_text(std::string((1 << 20) + 1, 'a')); }, "text"),
      Gen(
          "invalid UTF-8 0xFF", [](GenerateRequest* r) { r->set_text("ab\xff\xfe"); }, "text"),
      Gen(
          "truncated UTF-8", [](GenerateRequest* r) { r->set_text("euro \xE2\x82"); }, "text"),
      Gen(
          "overlong UTF-8", [](GenerateRequest* r) { r->set_text("slash \xC0\xAF"); }, "text"),
      Gen(
          "UTF-16 surrogate in UTF-8", [](GenerateRequest* r) { r->set_text("\xED\xA0\x80"); },
          "text"),
      Gen(
          "code point above U+10FFFF", [](GenerateRequest* r) { r->set_text("\xF4\x90\x80\x80"); },
          "text"),
      Gen(
          "request_id over 256 bytes",
          [](GenerateRequest* r) { r->set_request_id(std::string(257, 'r')); }, "request_id"),
      Gen(
          "max_new_tokens 0", [](GenerateRequest* r) { S(r)->set_max_new_tokens(0); },
          "max_new_tokens"),
      Gen(
          "max_new_tokens over the limit",
          [l](GenerateRequest* r) { S(r)->set_max_new_tokens(l.max_new_tokens_limit + 1); },
          "max_new_tokens"),
      Gen(
          "max_new_tokens UINT32_MAX",
          [](GenerateRequest* r) { S(r)->set_max_new_tokens(0xFFFFFFFFu); }, "max_new_tokens"),
      Gen(
          "temperature -1", [](GenerateRequest* r) { S(r)->set_temperature(-1); }, "temperature"),
      Gen(
          "temperature NaN", [](GenerateRequest* r) { S(r)->set_temperature(kNaN); },
          "temperature"),
      Gen(
          "temperature +inf", [](GenerateRequest* r) { S(r)->set_temperature(kInf); },
          "temperature"),
      Gen(
          "top_p 0", [](GenerateRequest* r) { S(r)->set_top_p(0); }, "top_p"),
      Gen(
          "top_p 1.5", [](GenerateRequest* r) { S(r)->set_top_p(1.5f); }, "top_p"),
      Gen(
          "top_p NaN", [](GenerateRequest* r) { S(r)->set_top_p(kNaN); }, "top_p"),
      Gen(
          "min_p -0.1", [](GenerateRequest* r) { S(r)->set_min_p(-0.1f); }, "min_p"),
      Gen(
          "min_p 1.01", [](GenerateRequest* r) { S(r)->set_min_p(1.01f); }, "min_p"),
      Gen(
          "repetition_penalty 0", [](GenerateRequest* r) { S(r)->set_repetition_penalty(0); },
          "repetition_penalty"),
      Gen(
          "repetition_penalty -2", [](GenerateRequest* r) { S(r)->set_repetition_penalty(-2); },
          "repetition_penalty"),
      Gen(
          "repetition_penalty +inf", [](GenerateRequest* r) { S(r)->set_repetition_penalty(kInf); },
          "repetition_penalty"),
      Gen(
          "presence_penalty 2.5", [](GenerateRequest* r) { S(r)->set_presence_penalty(2.5f); },
          "presence_penalty"),
      Gen(
          "presence_penalty -inf", [](GenerateRequest* r) { S(r)->set_presence_penalty(-kInf); },
          "presence_penalty"),
      Gen(
          "frequency_penalty -3", [](GenerateRequest* r) { S(r)->set_frequency_penalty(-3); },
          "frequency_penalty"),
      Gen(
          "frequency_penalty NaN", [](GenerateRequest* r) { S(r)->set_frequency_penalty(kNaN); },
          "frequency_penalty"),
      Gen(
          "logprobs 21", [](GenerateRequest* r) { S(r)->set_logprobs(21); }, "logprobs"),
      Gen(
          "logprobs UINT32_MAX", [](GenerateRequest* r) { S(r)->set_logprobs(0xFFFFFFFFu); },
          "logprobs"),
      Gen(
          "empty stop string", [](GenerateRequest* r) { S(r)->add_stop(""); }, "stop[0]"),
      Gen(
          "stop string over 256 bytes",
          [](GenerateRequest* r) {
            S(r)->add_stop("ok");
            S(r)->add_stop(std::string(257, 's'));
          },
          "stop[1]"),
      Gen(
          "stop string with invalid UTF-8", [](GenerateRequest* r) { S(r)->add_stop("a\x80"); },
          "stop[0]"),
      Gen(
          "17 stop strings",
          [](GenerateRequest* r) {
            for (int i = 0; i < 17; ++i) S(r)->add_stop(absl::StrCat("s", i));
          },
          "stop"),
      Gen(
          "huge stop list (100k strings)",
          [](GenerateRequest* r) {
            for (int i = 0; i < 100000; ++i) S(r)->add_stop("x");
          },
          "stop"),
      Gen(
          "stop_token_ids = vocab_size", [V](GenerateRequest* r) { S(r)->add_stop_token_ids(V); },
          "stop_token_ids[0]"),
      Gen(
          "stop_token_ids -1", [](GenerateRequest* r) { S(r)->add_stop_token_ids(-1); },
          "stop_token_ids[0]"),
      Gen(
          "65 stop_token_ids",
          [](GenerateRequest* r) {
            for (int i = 0; i < 65; ++i) S(r)->add_stop_token_ids(3);
          },
          "stop_token_ids"),
      Gen(
          "oversize message (Generate)",
          [l](GenerateRequest* r) { r->set_text(std::string(l.max_receive_bytes + 1024, 'a')); },
          "larger than max", PublicRpc::kGenerate, StatusCode::RESOURCE_EXHAUSTED),
      Gen(
          "oversize message (GenerateStream)",
          [l](GenerateRequest* r) { r->set_text(std::string(l.max_receive_bytes, 'a')); },
          "larger than max", PublicRpc::kGenerateStream, StatusCode::RESOURCE_EXHAUSTED),
      Gen(
          "stream: no input", [](GenerateRequest* r) { r->clear_input(); }, "input",
          PublicRpc::kGenerateStream),
      Gen(
          "stream: token id out of vocabulary", [V](GenerateRequest* r) { Ids(r, {V + 7}); },
          "token_ids.ids[0]", PublicRpc::kGenerateStream),
      Gen(
          "stream: invalid UTF-8", [](GenerateRequest* r) { r->set_text("\xC3"); }, "text",
          PublicRpc::kGenerateStream),
      Gen(
          "stream: top_p 2", [](GenerateRequest* r) { S(r)->set_top_p(2); }, "top_p",
          PublicRpc::kGenerateStream),
      Gen(
          "stream: prompt over the context",
          [C](GenerateRequest* r) { Ids(r, std::vector<int32_t>(static_cast<size_t>(C) + 1, 9)); },
          "context limit", PublicRpc::kGenerateStream),
      Gen(
          "CountTokens: no input", [](GenerateRequest* r) { r->clear_input(); }, "input",
          PublicRpc::kCountTokens),
      Gen(
          "CountTokens: invalid UTF-8", [](GenerateRequest* r) { r->set_text("\xFF"); }, "text",
          PublicRpc::kCountTokens),
      Gen(
          "CountTokens: token id out of vocabulary", [](GenerateRequest* r) { Ids(r, {-5}); },
          "token_ids.ids[0]", PublicRpc::kCountTokens),
      Gen(
          "CountTokens: text over max_text_bytes",
          [](GenerateRequest* r) { r->set_text(std::string((1 << 20) + 1, 'b')); }, "text",
          PublicRpc::kCountTokens),
      Gen(
          "CountTokens: oversize message",
          [l](GenerateRequest* r) { r->set_text(std::string(l.max_receive_bytes + 1, 'c')); },
          "larger than max", PublicRpc::kCountTokens, StatusCode::RESOURCE_EXHAUSTED),
  };
  return cases;
}

ExpertRequest ValidExpertRequest(const ExpertTarget& t) {
  ExpertRequest r;
  r.set_layer(t.moe_layer);
  auto* group = r.add_groups();
  group->set_expert(t.hosted_expert);
  auto* x = group->mutable_x();
  x->set_dtype(jamba::internal::v1::DTYPE_F32);
  x->add_shape(2);
  x->add_shape(t.hidden_size);
  std::vector<float> values(static_cast<size_t>(2 * t.hidden_size));
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * static_cast<float>(i % 17) - 0.05f;
  x->set_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return r;
}

std::vector<ExpertCase> ExpertHostileCases(const ExpertTarget& t) {
  const int64_t H = t.hidden_size;
  using jamba::internal::v1::DTYPE_BF16;
  using jamba::internal::v1::DTYPE_UNSPECIFIED;
  return {
      Bad(
          "layer -1", [](ExpertRequest* r) { r->set_layer(-1); }, "layer -1",
          StatusCode::NOT_FOUND),
      Bad(
          "layer = num_layers", [t](ExpertRequest* r) { r->set_layer(t.num_layers); }, "layer",
          StatusCode::NOT_FOUND),
      Bad(
          "layer INT32_MAX",
          [](ExpertRequest* r) { r->set_layer(std::numeric_limits<int32_t>::max()); }, "layer",
          StatusCode::NOT_FOUND),
      Bad(
          "dense layer", [t](ExpertRequest* r) { r->set_layer(t.dense_layer); }, "not an MoE layer",
          StatusCode::NOT_FOUND),
      Bad(
          "expert not hosted here",
          [t](ExpertRequest* r) { r->mutable_groups(0)->set_expert(t.unhosted_expert); },
          "not hosted", StatusCode::NOT_FOUND),
      Bad(
          "expert -1", [](ExpertRequest* r) { r->mutable_groups(0)->set_expert(-1); }, "not hosted",
          StatusCode::NOT_FOUND),
      Bad(
          "expert INT32_MIN",
          [](ExpertRequest* r) {
            r->mutable_groups(0)->set_expert(std::numeric_limits<int32_t>::min());
          },
          "not hosted", StatusCode::NOT_FOUND),
      Bad(
          "expert twice", [](ExpertRequest* r) { *r->add_groups() = r->groups(0); },
          "appears twice"),
      Bad(
          "dtype unspecified", [](ExpertRequest* r) { X(r)->set_dtype(DTYPE_UNSPECIFIED); },
          "dtype"),
      Bad(
          "dtype 77",
          [](ExpertRequest* r) { X(r)->set_dtype(static_cast<jamba::internal::v1::DType>(77)); },
          "dtype 77"),
      Bad(
          "bf16 label on f32 bytes", [](ExpertRequest* r) { X(r)->set_dtype(DTYPE_BF16); },
          "bytes"),
      Bad(
          "rank 0", [](ExpertRequest* r) { Shape(r, {}); }, "rank 0"),
      Bad(
          "rank 1", [H](ExpertRequest* r) { Shape(r, {2 * H}); }, "rank 1"),
      Bad(
          "rank 3",
          [H](ExpertRequest* r) {
            Shape(r, {1, 2, H});
          },
          "rank 3"),
      Bad(
          "wrong column count",
          [H](ExpertRequest* r) {
            Shape(r, {4, H / 2});
          },
          "columns"),
      Bad(
          "columns 0",
          [](ExpertRequest* r) {
            Shape(r, {2, 0});
          },
          "columns"),
      Bad(
          "negative rows",
          [H](ExpertRequest* r) {
            Shape(r, {-2, H});
          },
          "negative"),
      Bad(
          "negative columns",
          [](ExpertRequest* r) {
            Shape(r, {2, -64});
          },
          "negative"),
      Bad(
          "rows over the limit",
          [H](ExpertRequest* r) {
            Shape(r, {int64_t{1} << 40, H});
          },
          "rows"),
      Bad(
          "rows INT64_MAX",
          [H](ExpertRequest* r) {
            Shape(r, {std::numeric_limits<int64_t>::max(), H});
          },
          "rows"),
      Bad(
          "one byte short", [](ExpertRequest* r) { X(r)->mutable_data()->pop_back(); }, "bytes"),
      Bad(
          "one byte too many", [](ExpertRequest* r) { X(r)->mutable_data()->push_back('x'); },
          "bytes"),
      Bad(
          "no data", [](ExpertRequest* r) { X(r)->clear_data(); }, "bytes"),
      Bad(
          "rows claimed without data",
          [H](ExpertRequest* r) {
            Shape(r, {1000, H});
          },
          "bytes"),
      Bad(
          "second group truncated",
          [t](ExpertRequest* r) {
            auto* g = r->add_groups();
            g->set_expert(t.other_hosted_expert);
            *g->mutable_x() = r->groups(0).x();
            g->mutable_x()->mutable_data()->resize(3);
          },
          "bytes"),
  };
}

}  // namespace jamba::testing
