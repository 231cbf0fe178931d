#include "model/jamba_model.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/failpoint.h"
#include "core/status_macros.h"
#include "model/attention_mixer.h"
#include "model/local_experts.h"
#include "model/mamba_mixer.h"

namespace jamba::model {

absl::StatusOr<DType> ParseKvCacheDType(absl::string_view name) {
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("KV cache dtype \"", name, "\" (want f32 or bf16)"));
}

absl::StatusOr<ExpertWeights> ParseExpertWeights(absl::string_view name) {
  if (name == "stored") return ExpertWeights::kAsStored;
  if (name == "int8") return ExpertWeights::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("expert weights \"", name, "\" (want stored or int8)"));
}

JambaModel::~JambaModel() = default;

absl::StatusOr<std::unique_ptr<JambaModel>> JambaModel::Load(const Checkpoint& checkpoint,
                                                             kernels::Backend* backend,
                                                             ExpertRunner* experts,
                                                             const ModelOptions& options) {
  if (options.kv_cache_dtype != DType::kF32 && options.kv_cache_dtype != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache dtype ", DTypeName(options.kv_cache_dtype), " (want F32 or BF16)"));
  }
  const JambaConfig& c = checkpoint.config();
  const int64_t H = c.hidden_size, V = c.vocab_size;
  WeightLoader loader(&checkpoint, backend);
  std::unique_ptr<JambaModel> m(new JambaModel());
  m->config_ = c;
  m->options_ = options;
  m->backend_ = backend;
  ASSIGN_OR_RETURN(m->embed_tokens_, loader.Matrix("model.embed_tokens.weight", {V, H}));
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    DecoderLayer layer;
    ASSIGN_OR_RETURN(layer.input_norm, loader.F32(p + "input_layernorm.weight", {H}));
    ASSIGN_OR_RETURN(layer.pre_ff_norm, loader.F32(p + "pre_ff_layernorm.weight", {H}));
    if (c.mixer_kind(i) == MixerKind::kAttention) {
      ASSIGN_OR_RETURN(layer.mixer, AttentionMixer::Load(loader, i));
    } else {
      ASSIGN_OR_RETURN(layer.mixer, MambaMixer::Load(loader, i));
    }
    if (c.ffn_kind(i) == FfnKind::kMoe) {
      ASSIGN_OR_RETURN(layer.router,
                       loader.MatMulWeight(p + "feed_forward.router.weight", {c.num_experts, H}));
    } else {
      ASSIGN_OR_RETURN(GatedMlp dense, GatedMlp::Load(loader, p + "feed_forward"));
      layer.dense = std::move(dense);
    }
    m->layers_.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(m->final_norm_, loader.F32("model.final_layernorm.weight", {H}));
  if (c.tie_word_embeddings) {
    m->lm_head_ = m->embed_tokens_;
  } else {
    ASSIGN_OR_RETURN(m->lm_head_, loader.MatMulWeight("lm_head.weight", {V, H}));
  }
  if (experts == nullptr) {
    ASSIGN_OR_RETURN(m->owned_experts_,
                     LocalExperts::Load(loader, backend, {}, options.expert_weights));
    experts = m->owned_experts_.get();
  }
  m->experts_ = experts;
  return m;
}

absl::StatusOr<SequenceState> JambaModel::NewSequence() const {
  return SequenceState::Create(config_, backend_, options_.kv_cache_dtype);
}

absl::Status JambaModel::Validate(absl::Span<const SequenceChunk> batch) const {
  if (batch.empty()) return absl::InvalidArgumentError("empty batch");
  absl::flat_hash_set<const SequenceState*> seen;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceChunk& chunk = batch[i];
    if (chunk.state == nullptr || !seen.insert(chunk.state).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, " has a missing or repeated sequence state"));
    }
    if (chunk.tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("batch entry ", i, " has no tokens"));
    }
    for (int32_t id : chunk.tokens) {
      if (id < 0 || id >= config_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token id ", id, " is outside the vocabulary [0, ", config_.vocab_size, ")"));
      }
    }
    const int64_t total = chunk.state->length() + static_cast<int64_t>(chunk.tokens.size());
    if (total > config_.max_position_embeddings) {
      return absl::OutOfRangeError(absl::StrCat("sequence of ", total,
                                                " tokens exceeds the context limit of ",
                                                config_.max_position_embeddings));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PendingExperts>> JambaModel::SubmitMoe(int layer,
                                                                      const Tensor& router,
                                                                      const Tensor& x,
                                                                      Tensor* out) {
  const int64_t T = x.dim(0);
  const int E = config_.num_experts, k = config_.num_experts_per_tok;
  // router_logits = router(x): [T, E]
  ASSIGN_OR_RETURN(Tensor logits, backend_->AllocateUninitialized(DType::kF32, {T, E}));
  backend_->MatMul(x, router, nullptr, &logits);
  // routing_weights = softmax(router_logits, fp32); topk(routing_weights, k): [T, k]
  ASSIGN_OR_RETURN(Tensor weights, backend_->AllocateUninitialized(DType::kF32, {T, k}));
  ASSIGN_OR_RETURN(Tensor experts, backend_->AllocateUninitialized(DType::kI32, {T, k}));
  backend_->MoeGate(logits, k, &weights, &experts);
  if (backend_->device() != Device::kCpu) {
    Tensor host_w = Tensor::Zeros(DType::kF32, {T, k});
    Tensor host_e = Tensor::Zeros(DType::kI32, {T, k});
    backend_->Copy(weights, &host_w);
    backend_->Copy(experts, &host_e);
    weights = std::move(host_w);
    experts = std::move(host_e);
  }
  return experts_->Submit(layer, x, weights, experts, out);
}

std::vector<JambaModel::MicroBatch> JambaModel::Split(const std::vector<SequenceRows>& rows,
                                                      const Tensor& h, const Tensor& normed,
                                                      const Tensor& delta) const {
  // Two micro-batches of whole sequences, token counts as even as can be,
  // when the experts are remote and overlapping is on; one otherwise.
  const int64_t T = h.dim(0);
  size_t cut = rows.size();
  if (options_.overlap_expert_calls && experts_->asynchronous() && rows.size() >= 2) {
    cut = 1;
    for (size_t i = 2; i < rows.size(); ++i) {
      if (std::abs(2 * rows[i - 1].end - T) < std::abs(2 * rows[cut - 1].end - T)) cut = i;
    }
  }
  std::vector<MicroBatch> parts;
  for (const auto& [first, last] : {std::pair<size_t, size_t>{0, cut}, {cut, rows.size()}}) {
    if (first == last) continue;
    MicroBatch mb;
    const int64_t begin = rows[first].begin, end = rows[last - 1].end;
    for (size_t i = first; i < last; ++i) {
      mb.rows.push_back({rows[i].begin - begin, rows[i].end - begin, rows[i].state});
    }
    mb.h = h.Slice(begin, end);
    mb.normed = normed.Slice(begin, end);
    mb.delta = delta.Slice(begin, end);
    parts.push_back(std::move(mb));
  }
  return parts;
}

absl::Status JambaModel::RunLayers(std::vector<MicroBatch>& parts) {
  kernels::Backend* b = backend_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  // Ping-pong: a micro-batch's expert call is in flight while the other
  // runs its mixer; it is collected before its own next layer.
  auto collect = [b](MicroBatch& mb) -> absl::Status {
    if (mb.pending == nullptr) return absl::OkStatus();
    const absl::Status status = mb.pending->Wait();
    mb.pending.reset();
    RETURN_IF_ERROR(status);
    b->Add(mb.h, mb.delta, &mb.h);
    return absl::OkStatus();
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    for (MicroBatch& mb : parts) {
      RETURN_IF_ERROR(collect(mb));
      // h = h + mixer(input_layernorm(h))
      b->RmsNorm(mb.h, layer.input_norm, eps, &mb.normed);
      RETURN_IF_ERROR(layer.mixer->Forward(b, mb.normed, mb.rows, &mb.delta));
      b->Add(mb.h, mb.delta, &mb.h);
      // h = h + feed_forward(pre_ff_layernorm(h))
      b->RmsNorm(mb.h, layer.pre_ff_norm, eps, &mb.normed);
      if (layer.dense.has_value()) {
        RETURN_IF_ERROR(layer.dense->Forward(b, mb.normed, &mb.delta));
        b->Add(mb.h, mb.delta, &mb.h);
      } else {
        ASSIGN_OR_RETURN(mb.pending,
                         SubmitMoe(static_cast<int>(i), layer.router, mb.normed, &mb.delta));
      }
    }
  }
  for (MicroBatch& mb : parts) RETURN_IF_ERROR(collect(mb));
  return absl::OkStatus();
}

absl::StatusOr<Tensor> JambaModel::Forward(absl::Span<const SequenceChunk> batch, LogitsMode mode) {
  RETURN_IF_ERROR(Validate(batch));
  if (FailpointFires("model_forward")) {
    return absl::InternalError("failpoint model_forward: injected engine failure");
  }
  kernels::Backend* b = backend_;
  const int64_t H = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);

  // Stack the chunks: rows [begin, end) of the batch belong to chunk i.
  std::vector<SequenceRows> rows;
  std::vector<int32_t> ids;
  for (const SequenceChunk& chunk : batch) {
    RETURN_IF_ERROR(chunk.state->ReserveKv(chunk.state->length() + chunk.tokens.size(), b));
    const int64_t begin = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), chunk.tokens.begin(), chunk.tokens.end());
    rows.push_back({begin, static_cast<int64_t>(ids.size()), chunk.state});
  }
  const int64_t T = static_cast<int64_t>(ids.size());

  // hidden_states = embed_tokens(input_ids): [T, H]
  ASSIGN_OR_RETURN(Tensor ids_t, UploadI32(b, ids));
  ASSIGN_OR_RETURN(Tensor h, b->AllocateUninitialized(DType::kF32, {T, H}));
  b->Embedding(embed_tokens_, ids_t, &h);

  ASSIGN_OR_RETURN(Tensor normed, b->AllocateUninitialized(DType::kF32, {T, H}));  // [T, H]
  ASSIGN_OR_RETURN(Tensor delta, b->AllocateUninitialized(DType::kF32, {T, H}));   // [T, H]
  std::vector<MicroBatch> parts = Split(rows, h, normed, delta);
  RETURN_IF_ERROR(RunLayers(parts));
  for (const SequenceChunk& chunk : batch) chunk.state->Advance(chunk.tokens.size());

  // Keep only each sequence's last row when asked: [num chunks, H]
  if (mode == LogitsMode::kLast) {
    std::vector<int32_t> last;
    for (const SequenceRows& r : rows) last.push_back(static_cast<int32_t>(r.end - 1));
    ASSIGN_OR_RETURN(Tensor last_t, UploadI32(b, last));
    ASSIGN_OR_RETURN(Tensor picked,
                     b->AllocateUninitialized(DType::kF32, {static_cast<int64_t>(last.size()), H}));
    b->GatherRows(h, last_t, &picked);
    h = std::move(picked);
  }
  // logits = lm_head(final_layernorm(h)): [rows, V]
  ASSIGN_OR_RETURN(Tensor final_normed, b->AllocateUninitialized(DType::kF32, h.shape()));
  b->RmsNorm(h, final_norm_, eps, &final_normed);
  ASSIGN_OR_RETURN(Tensor logits,
                   b->AllocateUninitialized(DType::kF32, {h.dim(0), config_.vocab_size}));
  b->MatMul(final_normed, lm_head_, nullptr, &logits);
  RETURN_IF_ERROR(b->Synchronize());
  if (b->device() == Device::kCpu) return logits;
  Tensor host = Tensor::Zeros(DType::kF32, logits.shape());
  b->Copy(logits, &host);
  return host;
}

}  // namespace jamba::model
