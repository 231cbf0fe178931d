#include "mixer_worker/mixer_executor.h"

#include <atomic>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/local_experts.h"
#include "model/weight_loader.h"

namespace jamba::mixer {
namespace {

// Wraps the real runner: reports how many rows each expert receives (when
// asked) and remembers whether a call failed, which tells the experts'
// failures from the mixer's own.
class ObservedExperts final : public model::ExpertRunner {
 public:
  ObservedExperts(model::ExpertRunner* inner, std::function<void(int, int, int64_t)> on_routed)
      : inner_(inner), on_routed_(std::move(on_routed)) {}

  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override {
    Count(layer, experts);
    absl::Status status = inner_->Run(layer, x, weights, experts, out);
    if (!status.ok()) failed_.store(true);
    return status;
  }
  std::unique_ptr<model::PendingExperts> Submit(int layer, const Tensor& x, const Tensor& weights,
                                                const Tensor& experts, Tensor* out) override {
    Count(layer, experts);
    return std::make_unique<Call>(inner_->Submit(layer, x, weights, experts, out), &failed_);
  }
  bool asynchronous() const override { return inner_->asynchronous(); }
  // Whether a call failed since the last TakeFailed.
  bool TakeFailed() { return failed_.exchange(false); }

 private:
  class Call final : public model::PendingExperts {
   public:
    Call(std::unique_ptr<model::PendingExperts> inner, std::atomic<bool>* failed)
        : inner_(std::move(inner)), failed_(failed) {}
    absl::Status Wait() override {
      absl::Status status = inner_->Wait();
      if (!status.ok()) failed_->store(true);
      return status;
    }

   private:
    std::unique_ptr<model::PendingExperts> inner_;
    std::atomic<bool>* failed_;
  };

  void Count(int layer, const Tensor& experts) {
    if (!on_routed_) return;
    std::map<int, int64_t> rows;  // expert -> rows, for this layer and step
    for (int64_t i = 0; i < experts.numel(); ++i) ++rows[experts.data<int32_t>()[i]];
    for (const auto& [expert, n] : rows) on_routed_(layer, expert, n);
  }

  model::ExpertRunner* inner_;
  std::function<void(int, int, int64_t)> on_routed_;
  std::atomic<bool> failed_{false};
};

// Failures that mean this process's engine (backend, memory, mixers) is
// broken, as opposed to bad input, a full pool or a lost expert shard.
bool IsEngineFailure(const absl::Status& status) {
  return absl::IsInternal(status) || absl::IsUnknown(status) || absl::IsDataLoss(status);
}

}  // namespace

MixerExecutor::~MixerExecutor() = default;

absl::StatusOr<std::unique_ptr<MixerExecutor>> MixerExecutor::Create(const MixerOptions& options) {
  std::unique_ptr<MixerExecutor> m(new MixerExecutor(options));
  ASSIGN_OR_RETURN(m->backend_, kernels::CreateBackend(options.backend));
  ASSIGN_OR_RETURN(m->checkpoint_, model::Checkpoint::Open(options.model_dir));
  model::ExpertRunner* experts = nullptr;
  if (options.placement != nullptr) {
    rpc::RemoteExpertsOptions remote;
    remote.call_timeout = options.expert_timeout;
    remote.credentials = options.expert_credentials;
    remote.on_round_trip = options.on_round_trip;
    ASSIGN_OR_RETURN(m->remote_, rpc::RemoteExperts::Create(*options.placement,
                                                            m->checkpoint_->config().hidden_size,
                                                            m->backend_.get(), remote));
    experts = m->remote_.get();
  }
  if (experts == nullptr) {
    // In-process experts: load them here so the observer can wrap them.
    model::WeightLoader loader(m->checkpoint_.get(), m->backend_.get());
    ASSIGN_OR_RETURN(m->local_, model::LocalExperts::Load(loader, m->backend_.get(), {},
                                                          options.model_options.expert_weights));
    experts = m->local_.get();
  }
  m->observed_ = std::make_unique<ObservedExperts>(experts, options.on_routed);
  experts = m->observed_.get();
  ASSIGN_OR_RETURN(m->model_, model::JambaModel::Load(*m->checkpoint_, m->backend_.get(), experts,
                                                      options.model_options));
  return m;
}

absl::Status MixerExecutor::CheckExperts(absl::Duration timeout) {
  if (remote_ == nullptr) return absl::OkStatus();
  return remote_->WaitUntilReady(timeout);
}

absl::Status MixerExecutor::AddSequence(uint64_t id, int64_t reserve_tokens) {
  if (sequences_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " already exists"));
  }
  ASSIGN_OR_RETURN(model::SequenceState state, model_->NewSequence());
  if (reserve_tokens > 0) RETURN_IF_ERROR(state.ReserveKv(reserve_tokens, backend_.get()));
  sequences_[id] = std::make_unique<model::SequenceState>(std::move(state));
  return absl::OkStatus();
}

void MixerExecutor::ReleaseSequence(uint64_t id) { sequences_.erase(id); }

int64_t MixerExecutor::SequenceLength(uint64_t id) const {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? 0 : it->second->length();
}

absl::StatusOr<Tensor> MixerExecutor::Forward(absl::Span<const MixerStep> steps,
                                              absl::Time deadline) {
  if (remote_ != nullptr) remote_->set_deadline(deadline);
  std::vector<model::SequenceChunk> batch;
  batch.reserve(steps.size());
  for (const MixerStep& step : steps) {
    auto it = sequences_.find(step.sequence_id);
    if (it == sequences_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown sequence ", step.sequence_id));
    }
    batch.push_back({it->second.get(), step.tokens});
  }
  static_cast<ObservedExperts*>(observed_.get())->TakeFailed();
  absl::StatusOr<Tensor> logits = model_->Forward(batch, model::LogitsMode::kLast);
  const bool experts_failed = static_cast<ObservedExperts*>(observed_.get())->TakeFailed();
  if (!logits.ok() && !experts_failed && IsEngineFailure(logits.status())) {
    absl::MutexLock lock(&broken_mu_);
    if (broken_.ok()) broken_ = logits.status();
  }
  return logits;
}

absl::Status MixerExecutor::Health() const {
  absl::MutexLock lock(&broken_mu_);
  return broken_;
}

}  // namespace jamba::mixer
