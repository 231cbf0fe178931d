#include "router/jamba_service.h"

#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "router/generate_calls.h"
#include "rpc/status_conversion.h"

namespace jamba::router {

using jamba::v1::GenerateRequest;

JambaServiceImpl::JambaServiceImpl(Engine* engine, const mixer::Mixer* mixer,
                                   const Tokenizer* tokenizer, RequestLimits limits,
                                   Metrics* metrics)
    : engine_(engine), mixer_(mixer), tokenizer_(tokenizer), limits_(limits), metrics_(metrics) {}

absl::StatusOr<GenerationRequest> JambaServiceImpl::Prepare(grpc::CallbackServerContext* context,
                                                            const GenerateRequest& request) const {
  const absl::Time arrival = absl::Now();
  absl::StatusOr<GenerationRequest> r =
      ValidateGenerateRequest(request, tokenizer_, mixer_->config(), limits_);
  if (!r.ok()) {
    if (metrics_ != nullptr) metrics_->CountFailure(FailureReason::kValidation);
    return r.status();
  }
  r->arrival = arrival;
  if (r->request_id.empty()) r->request_id = absl::StrCat("req-", next_request_.fetch_add(1));
  if (!request.sampling().has_seed()) {
    std::random_device entropy;
    r->sampling.seed = (uint64_t{entropy()} << 32) | entropy();
  }
  const absl::Time deadline = absl::FromChrono(context->deadline());
  if (deadline <= arrival) return absl::DeadlineExceededError("the deadline has already passed");
  r->deadline = deadline;
  return r;
}

grpc::ServerUnaryReactor* JambaServiceImpl::Generate(grpc::CallbackServerContext* context,
                                                     const GenerateRequest* request,
                                                     jamba::v1::GenerateResponse* response) {
  const bool logprobs = request->sampling().has_logprobs();
  auto* call = new UnaryCall(engine_, tokenizer_, response, logprobs);
  call->Start(Prepare(context, *request));
  return call;
}

grpc::ServerWriteReactor<jamba::v1::GenerateStreamResponse>* JambaServiceImpl::GenerateStream(
    grpc::CallbackServerContext* context, const GenerateRequest* request) {
  absl::StatusOr<GenerationRequest> prepared = Prepare(context, *request);
  // A rejected request gets no final message, so its unchecked id is never echoed.
  const std::string request_id = prepared.ok() ? prepared->request_id : std::string();
  auto* call = new StreamCall(engine_, tokenizer_, request_id, request->sampling().has_logprobs());
  call->Start(std::move(prepared));
  return call;
}

grpc::ServerUnaryReactor* JambaServiceImpl::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const jamba::v1::GetModelInfoRequest*,
                                                         jamba::v1::ModelInfo* info) {
  const model::JambaConfig& c = mixer_->config();
  info->set_model(mixer_->model_dir());
  std::ifstream config_file(mixer_->model_dir() + "/config.json");
  std::stringstream config_text;
  config_text << config_file.rdbuf();
  info->set_config_json(config_text.str());
  info->set_context_limit(limits_.context_limit);
  info->set_vocab_size(static_cast<uint32_t>(c.vocab_size));
  for (int eos : c.eos_token_ids) info->add_eos_token_ids(eos);
  info->set_bos_token_id(c.bos_token_id);
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    jamba::v1::LayerInfo* layer = info->add_layers();
    layer->set_index(i);
    layer->set_mixer(c.mixer_kind(i) == model::MixerKind::kAttention ? "attention" : "mamba");
    layer->set_ffn(c.ffn_kind(i) == model::FfnKind::kMoe ? "moe" : "dense");
  }
  if (const rpc::ExpertPlacement* placement = mixer_->placement()) {
    for (size_t s = 0; s < placement->shards().size(); ++s) {
      jamba::v1::ShardInfo* shard = info->add_expert_shards();
      shard->set_name(placement->shards()[s].name);
      for (const std::string& target : placement->shards()[s].targets) shard->add_addresses(target);
      for (const auto& [layer, expert] : placement->ExpertsOf(static_cast<int>(s))) {
        shard->add_experts(absl::StrCat(layer, ":", expert));
      }
    }
  }
  info->set_tokenizer(tokenizer_ != nullptr ? "sentencepiece" : "");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* JambaServiceImpl::CountTokens(
    grpc::CallbackServerContext* context, const jamba::v1::CountTokensRequest* request,
    jamba::v1::CountTokensResponse* response) {
  const bool add_bos = !request->has_add_bos() || request->add_bos();
  absl::StatusOr<std::vector<int32_t>> ids = PromptIds(
      request->has_token_ids() ? &request->token_ids() : nullptr,
      request->input_case() == jamba::v1::CountTokensRequest::kText ? &request->text() : nullptr,
      add_bos, tokenizer_, mixer_->config(), limits_);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!ids.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(ids.status()));
    return reactor;
  }
  response->set_count(static_cast<uint32_t>(ids->size()));
  for (int32_t id : *ids) response->add_token_ids(id);
  response->set_context_limit(limits_.context_limit);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace jamba::router
