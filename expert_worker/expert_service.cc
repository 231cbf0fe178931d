#include "expert_worker/expert_service.h"

#include <deque>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/status_macros.h"
#include "rpc/expert_placement.h"
#include "rpc/grpc_tsan.h"
#include "rpc/tensor_codec.h"

namespace jamba::expert {

using ::jamba::internal::v1::ShardInfoRequest;
using ::jamba::internal::v1::ShardInfoResponse;

// One Compute stream. Reads requests one after another and answers each on
// the reading thread; responses queue so that one write is in flight. Ends
// with OK when the client half-closes or the service drains. Deletes itself
// in OnDone.
class ComputeReactor final : public grpc::ServerBidiReactor<ExpertRequest, ExpertResponse> {
 public:
  explicit ComputeReactor(ExpertServiceImpl* service) : service_(service) {
    if (!service_->Register(this)) {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      rpc::GrpcOpStarts(this);
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the expert worker is shutting down"));
      return;
    }
    rpc::GrpcOpStarts(this);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    rpc::GrpcReaction reaction(this);
    if (!ok) {
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) FinishNow();
      return;
    }
    {
      // A drain that comes while this request is computed waits for its
      // answer (ShouldFinishLocked); one that came first ended the stream.
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      handling_ = true;
    }
    ExpertResponse response = service_->Handle(request_, absl::Now());
    request_.Clear();
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      handling_ = false;
      if (!write_failed_) {
        writes_.push_back(std::move(response));
        if (!writing_) {
          writing_ = true;
          rpc::GrpcOpStarts(this);
          StartWrite(&writes_.front());
        }
      }
      // Read on unless draining; then the last write's OnWriteDone finishes.
      if (draining_) {
        reads_done_ = true;
      } else {
        rpc::GrpcOpStarts(this);
        StartRead(&request_);
      }
      finish = ShouldFinishLocked();
    }
    if (finish) FinishNow();
  }

  void OnWriteDone(bool ok) override {
    rpc::GrpcReaction reaction(this);
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) {
        write_failed_ = true;
        writes_.clear();
        status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "writing a response failed");
      }
      writing_ = !writes_.empty();
      if (writing_) {
        rpc::GrpcOpStarts(this);
        StartWrite(&writes_.front());
      }
      finish = ShouldFinishLocked();
    }
    if (finish) FinishNow();
  }

  void OnDone() override {
    rpc::GrpcReactionStarts(this);
    service_->Unregister(this);
    delete this;
  }

  // Marks the stream as draining; true when the caller must Finish it now.
  bool Drain() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    return ShouldFinishLocked();
  }
  void FinishNow() {
    rpc::GrpcOpStarts(this);
    Finish(status_);
  }

 private:
  // True once, when nothing is left to do: the caller then calls Finish.
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || handling_ || !(reads_done_ || draining_)) return false;
    finished_ = true;
    return true;
  }

  ExpertServiceImpl* const service_;
  ExpertRequest request_;  // the read in flight; touched only by OnReadDone

  absl::Mutex mu_;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool handling_ ABSL_GUARDED_BY(mu_) = false;  // OnReadDone is computing an answer
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set before finished_ turns true, read after: no lock needed by Finish.
  grpc::Status status_ = grpc::Status::OK;
  std::deque<ExpertResponse> writes_ ABSL_GUARDED_BY(mu_);  // front in flight
};

ExpertServiceImpl::ExpertServiceImpl(const model::JambaConfig& config, model::LocalExperts* experts,
                                     ExpertServiceOptions options)
    : config_(config), experts_(experts), options_(std::move(options)) {
  for (int layer = 0; layer < config_.num_hidden_layers; ++layer) {
    for (int e = 0; e < config_.num_experts; ++e) {
      if (experts_->Hosts(layer, e)) hosted_.push_back(rpc::PairName(layer, e));
    }
  }
}

ExpertServiceImpl::~ExpertServiceImpl() {
  // The server is shut down first: every stream's OnDone has unregistered.
  absl::MutexLock lock(&streams_mu_);
  JAMBA_CHECK(streams_.empty()) << "ExpertServiceImpl destroyed with open Compute streams";
}

grpc::ServerBidiReactor<ExpertRequest, ExpertResponse>* ExpertServiceImpl::Compute(
    grpc::CallbackServerContext* context) {
  return new ComputeReactor(this);
}

grpc::ServerUnaryReactor* ExpertServiceImpl::GetShardInfo(grpc::CallbackServerContext* context,
                                                          const ShardInfoRequest* request,
                                                          ShardInfoResponse* response) {
  response->set_shard(options_.shard_name);
  response->set_hidden_size(config_.hidden_size);
  for (const std::string& pair : hosted_) response->add_experts(pair);
  response->set_weight_bytes(options_.weight_bytes);
  response->set_requests_answered(answered_.load());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

ExpertResponse ExpertServiceImpl::Handle(const ExpertRequest& request, absl::Time received) {
  ExpertResponse response;
  const absl::Time deadline = request.timeout_us() > 0
                                  ? received + absl::Microseconds(request.timeout_us())
                                  : absl::InfiniteFuture();
  const absl::Status status = HandleInto(request, deadline, &response);
  if (!status.ok()) {
    response.Clear();
    response.set_error_code(status.raw_code());
    response.set_error_message(std::string(status.message()));
  }
  response.set_tag(request.tag());
  response.set_worker_us(absl::ToInt64Microseconds(absl::Now() - received));
  answered_.fetch_add(1);
  return response;
}

absl::Status ExpertServiceImpl::HandleInto(const ExpertRequest& request, absl::Time deadline,
                                           ExpertResponse* response) {
  const int layer = request.layer();
  auto check_deadline = [&]() -> absl::Status {
    if (absl::Now() < deadline) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat("the caller's deadline (", request.timeout_us(),
                                                    " us after the request arrived) passed "
                                                    "before MoE layer ",
                                                    layer, " was computed"));
  };
  if (layer < 0 || layer >= config_.num_hidden_layers ||
      config_.ffn_kind(layer) != model::FfnKind::kMoe) {
    return absl::NotFoundError(absl::StrCat("layer ", layer, " is not an MoE layer (",
                                            config_.num_hidden_layers, " layers)"));
  }
  // Check every group before computing any.
  std::vector<Tensor> xs;  // [n_g, H] f32 host
  std::vector<DType> wire;
  std::set<int> seen;
  for (int g = 0; g < request.groups_size(); ++g) {
    const auto& group = request.groups(g);
    const int e = group.expert();
    if (!seen.insert(e).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("expert ", e, " appears twice in the request for layer ", layer));
    }
    if (!experts_->Hosts(layer, e)) {
      return absl::NotFoundError(absl::StrCat("expert ", rpc::PairName(layer, e),
                                              " (layer:expert) is not hosted by shard \"",
                                              options_.shard_name, "\""));
    }
    absl::StatusOr<DType> dtype = rpc::FromProtoDType(group.x().dtype());
    absl::StatusOr<Tensor> x = dtype.ok() ? rpc::DecodeTensor(group.x(), config_.hidden_size)
                                          : absl::StatusOr<Tensor>(dtype.status());
    if (!x.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rows of expert ", rpc::PairName(layer, e), ": ", x.status().message()));
    }
    xs.push_back(*std::move(x));
    wire.push_back(*dtype);
  }
  std::vector<int> experts;
  for (const auto& group : request.groups()) experts.push_back(group.expert());
  std::vector<Tensor> ys;  // [n_g, H] f32 host: every group in one grouped pass
  {
    absl::MutexLock lock(&compute_mu_);
    RETURN_IF_ERROR(check_deadline());
    ASSIGN_OR_RETURN(ys, experts_->RunGroups(layer, experts, xs));
  }
  for (size_t g = 0; g < ys.size(); ++g) {
    auto* output = response->add_outputs();
    output->set_expert(request.groups(static_cast<int>(g)).expert());
    rpc::EncodeTensor(ys[g], wire[g], output->mutable_y());
  }
  return absl::OkStatus();
}

bool ExpertServiceImpl::Register(ComputeReactor* reactor) {
  absl::MutexLock lock(&streams_mu_);
  if (draining_) return false;
  streams_.insert(reactor);
  return true;
}

void ExpertServiceImpl::Unregister(ComputeReactor* reactor) {
  absl::MutexLock lock(&streams_mu_);
  streams_.erase(reactor);
}

void ExpertServiceImpl::BeginDrain() {
  std::vector<ComputeReactor*> to_finish;
  {
    absl::MutexLock lock(&streams_mu_);
    draining_ = true;
    for (ComputeReactor* reactor : streams_) {
      if (reactor->Drain()) to_finish.push_back(reactor);
    }
  }
  // Outside streams_mu_: Finish may run OnDone (and Unregister) inline.
  for (ComputeReactor* reactor : to_finish) reactor->FinishNow();
}

bool ExpertServiceImpl::WaitForStreams(absl::Time deadline) {
  absl::MutexLock lock(&streams_mu_);
  auto none_open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) { return streams_.empty(); };
  return streams_mu_.AwaitWithDeadline(absl::Condition(&none_open), deadline);
}

absl::StatusOr<int64_t> ExpertWeightBytes(const model::Checkpoint& checkpoint,
                                          const model::LocalExperts::HostPredicate& hosts) {
  const model::JambaConfig& c = checkpoint.config();
  int64_t bytes = 0;
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    if (c.ffn_kind(layer) != model::FfnKind::kMoe) continue;
    for (int e = 0; e < c.num_experts; ++e) {
      if (hosts && !hosts(layer, e)) continue;
      const std::string scope = absl::StrCat("model.layers.", layer, ".feed_forward.experts.", e);
      const Shape in_shape = {c.intermediate_size, c.hidden_size};
      const Shape out_shape = {c.hidden_size, c.intermediate_size};
      for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
        const Shape& shape = proj[0] == 'd' ? out_shape : in_shape;
        ASSIGN_OR_RETURN(Tensor w,
                         checkpoint.Get(absl::StrCat(scope, ".", proj, ".weight"), shape));
        bytes += static_cast<int64_t>(w.nbytes());
      }
    }
  }
  return bytes;
}

}  // namespace jamba::expert
