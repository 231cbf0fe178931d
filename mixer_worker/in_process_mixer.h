// InProcessMixer: the Mixer over a MixerExecutor in this process (the
// router's embedded default). Every step succeeds or fails as a whole.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "mixer_worker/mixer.h"
#include "mixer_worker/mixer_executor.h"

namespace jamba::mixer {

class InProcessMixer final : public Mixer {
 public:
  explicit InProcessMixer(std::unique_ptr<MixerExecutor> executor)
      : executor_(std::move(executor)) {}

  MixerExecutor& executor() { return *executor_; }

  const model::JambaConfig& config() const override { return executor_->config(); }
  const std::string& model_dir() const override { return executor_->checkpoint().dir(); }
  const rpc::ExpertPlacement* placement() const override { return executor_->placement(); }
  absl::Status CheckReady(absl::Duration timeout) override {
    return executor_->CheckExperts(timeout);
  }
  absl::Status Health() const override { return executor_->Health(); }
  absl::Status AddSequence(uint64_t id, int64_t reserve_tokens) override {
    return executor_->AddSequence(id, reserve_tokens);
  }
  void ReleaseSequence(uint64_t id) override { executor_->ReleaseSequence(id); }
  absl::StatusOr<Tensor> Forward(absl::Span<const MixerStep> steps, absl::Time deadline,
                                 absl::Span<absl::Status> step_status) override {
    for (absl::Status& s : step_status) s = absl::OkStatus();
    return executor_->Forward(steps, deadline);
  }

 private:
  std::unique_ptr<MixerExecutor> executor_;
};

}  // namespace jamba::mixer
