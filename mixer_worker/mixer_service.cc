#include "mixer_worker/mixer_service.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "rpc/tensor_codec.h"

namespace jamba::mixer {

using ::jamba::internal::v1::MixerInfoRequest;
using ::jamba::internal::v1::MixerInfoResponse;
using ::jamba::internal::v1::OpenSequence;
using ::jamba::internal::v1::StepBatch;

grpc::Status MixerServiceImpl::Session(
    grpc::ServerContext* context, grpc::ServerReaderWriter<MixerResponse, MixerRequest>* stream) {
  SessionMap session;
  MixerRequest request;
  while (stream->Read(&request)) {
    MixerResponse response = Handle(session, request);
    if (!stream->Write(response)) break;
  }
  CloseSession(session);
  return grpc::Status::OK;
}

grpc::Status MixerServiceImpl::GetMixerInfo(grpc::ServerContext* context,
                                            const MixerInfoRequest* request,
                                            MixerInfoResponse* response) {
  const model::JambaConfig& config = executor_->config();
  response->set_vocab_size(config.vocab_size);
  response->set_hidden_size(config.hidden_size);
  response->set_num_hidden_layers(config.num_hidden_layers);
  absl::MutexLock lock(&mu_);
  response->set_serving(experts_ready_ && !draining_);
  response->set_open_sequences(open_);
  response->set_sequences_opened(opened_);
  response->set_steps(steps_);
  return grpc::Status::OK;
}

void MixerServiceImpl::SetExpertsReady(bool ready) {
  absl::MutexLock lock(&mu_);
  experts_ready_ = ready;
}

void MixerServiceImpl::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool MixerServiceImpl::WaitForSequences(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto none_open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&none_open), deadline);
}

MixerResponse MixerServiceImpl::Handle(SessionMap& session, const MixerRequest& request) {
  MixerResponse response;
  response.set_tag(request.tag());
  absl::Status status;
  switch (request.kind_case()) {
    case MixerRequest::kOpen:
      status = Open(session, request.open());
      break;
    case MixerRequest::kStep:
      status = Step(session, request.step(), &response);
      break;
    case MixerRequest::kClose: {
      int closed = 0;
      absl::MutexLock lock(&executor_mu_);
      for (uint64_t id : request.close().sequence_ids()) {
        auto it = session.find(id);
        if (it == session.end()) continue;
        executor_->ReleaseSequence(it->second);
        session.erase(it);
        ++closed;
      }
      CountOpen(-closed);
      break;
    }
    case MixerRequest::KIND_NOT_SET:
      status = absl::InvalidArgumentError("MixerRequest: set one of open, step, close");
      break;
  }
  if (!status.ok()) {
    response.clear_logits();
    response.set_error_code(static_cast<int32_t>(status.code()));
    response.set_error_message(std::string(status.message()));
  }
  return response;
}

void MixerServiceImpl::CloseSession(SessionMap& session) {
  absl::MutexLock lock(&executor_mu_);
  for (const auto& [local, id] : session) executor_->ReleaseSequence(id);
  CountOpen(-static_cast<int>(session.size()));
  session.clear();
}

void MixerServiceImpl::CountRouted(int layer, int expert, int64_t rows) {
  ::jamba::internal::v1::RoutedRows& routed = routed_.emplace_back();
  routed.set_layer(layer);
  routed.set_expert(expert);
  routed.set_rows(rows);
}

void MixerServiceImpl::CountOpen(int delta) {
  absl::MutexLock lock(&mu_);
  open_ += delta;
  if (delta > 0) opened_ += delta;
}

absl::Status MixerServiceImpl::Open(SessionMap& session, const OpenSequence& open) {
  const int64_t limit = executor_->config().max_position_embeddings;
  if (open.reserve_tokens() < 0 || open.reserve_tokens() > limit) {
    return absl::InvalidArgumentError(absl::StrCat("open.reserve_tokens ", open.reserve_tokens(),
                                                   " is outside [0, ", limit, "]"));
  }
  if (session.contains(open.sequence_id())) {
    return absl::AlreadyExistsError(
        absl::StrCat("open.sequence_id ", open.sequence_id(), " is already open"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return absl::UnavailableError("the mixer worker is draining");
    if (!experts_ready_) {
      return absl::UnavailableError("the mixer worker's expert shards are not ready");
    }
  }
  absl::MutexLock lock(&executor_mu_);
  const uint64_t id = next_id_++;
  RETURN_IF_ERROR(executor_->AddSequence(id, open.reserve_tokens()));
  session[open.sequence_id()] = id;
  CountOpen(1);
  return absl::OkStatus();
}

absl::Status MixerServiceImpl::Step(SessionMap& session, const StepBatch& step,
                                    MixerResponse* response) {
  if (step.chunks_size() == 0) return absl::InvalidArgumentError("step.chunks is empty");
  std::vector<MixerStep> steps;
  steps.reserve(step.chunks_size());
  absl::flat_hash_set<uint64_t> seen;
  for (const auto& chunk : step.chunks()) {
    auto it = session.find(chunk.sequence_id());
    if (it == session.end()) {
      return absl::NotFoundError(
          absl::StrCat("step.chunks: sequence ", chunk.sequence_id(), " is not open"));
    }
    if (!seen.insert(chunk.sequence_id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("step.chunks: sequence ", chunk.sequence_id(), " appears twice"));
    }
    steps.push_back({it->second, absl::MakeConstSpan(chunk.tokens())});
  }
  const absl::Time deadline = step.deadline_unix_micros() > 0
                                  ? absl::FromUnixMicros(step.deadline_unix_micros())
                                  : absl::InfiniteFuture();
  absl::MutexLock lock(&executor_mu_);
  routed_.clear();
  ASSIGN_OR_RETURN(Tensor logits, executor_->Forward(steps, deadline));
  for (auto& routed : routed_) *response->add_routed() = std::move(routed);
  {
    absl::MutexLock counters(&mu_);
    ++steps_;
  }
  rpc::EncodeTensor(logits, DType::kF32, response->mutable_logits());
  return absl::OkStatus();
}

}  // namespace jamba::mixer
