#include "mixer_worker/mixer_executor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace jamba::mixer {

MixerExecutor::~MixerExecutor() = default;

absl::StatusOr<std::unique_ptr<MixerExecutor>> MixerExecutor::Create(const MixerOptions& options) {
  std::unique_ptr<MixerExecutor> m(new MixerExecutor(options));
  ASSIGN_OR_RETURN(m->backend_, kernels::CreateBackend(options.backend));
  ASSIGN_OR_RETURN(m->checkpoint_, model::Checkpoint::Open(options.model_dir));
  model::ExpertRunner* experts = nullptr;
  if (options.placement != nullptr) {
    rpc::RemoteExpertsOptions remote;
    remote.call_timeout = options.expert_timeout;
    ASSIGN_OR_RETURN(m->remote_,
                     rpc::RemoteExperts::Create(*options.placement,
                                                m->checkpoint_->config().hidden_size,
                                                m->backend_.get(), remote));
    experts = m->remote_.get();
  }
  ASSIGN_OR_RETURN(m->model_, model::JambaModel::Load(*m->checkpoint_, m->backend_.get(), experts));
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

absl::StatusOr<Tensor> MixerExecutor::Forward(absl::Span<const MixerStep> steps) {
  std::vector<model::SequenceChunk> batch;
  batch.reserve(steps.size());
  for (const MixerStep& step : steps) {
    auto it = sequences_.find(step.sequence_id);
    if (it == sequences_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown sequence ", step.sequence_id));
    }
    batch.push_back({it->second.get(), step.tokens});
  }
  return model_->Forward(batch, model::LogitsMode::kLast);
}

}  // namespace jamba::mixer
