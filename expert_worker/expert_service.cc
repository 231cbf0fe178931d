#include "expert_worker/expert_service.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/spin_wait.h"
#include "core/status_macros.h"
#include "expert_worker/compute_stream.h"
#include "rpc/expert_placement.h"
#include "rpc/tensor_codec.h"

namespace jamba::expert {

using ::jamba::internal::v1::ShardInfoRequest;
using ::jamba::internal::v1::ShardInfoResponse;

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
  Stop();
  absl::MutexLock lock(&streams_mu_);
  JAMBA_CHECK(streams_.empty()) << "ExpertServiceImpl destroyed with open Compute streams";
}

void ExpertServiceImpl::Stop() {
  {
    absl::MutexLock lock(&ops_mu_);
    stopping_ = true;
  }
  if (threads_ != nullptr) {
    threads_.reset();  // shuts cq_ down and drains it
  } else if (cq_ != nullptr && !stopped_) {
    cq_->Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) rpc::Completion::Run(tag, ok);
  }
  stopped_ = true;
}

void ExpertServiceImpl::RegisterWith(grpc::ServerBuilder* builder) {
  builder->RegisterService(this);
  cq_ = builder->AddCompletionQueue();
}

void ExpertServiceImpl::Start(int num_threads) {
  JAMBA_CHECK(cq_ != nullptr && threads_ == nullptr && !stopped_)
      << "Start needs RegisterWith, and runs once";
  ComputeStream::Accept(this, cq_.get());
  threads_ = std::make_unique<rpc::CompletionQueueThreads>(cq_.get(), num_threads, RpcSpinMicros());
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

bool ExpertServiceImpl::Register(ComputeStream* stream) {
  absl::MutexLock lock(&streams_mu_);
  if (draining_) return false;
  streams_.insert(stream);
  return true;
}

void ExpertServiceImpl::Unregister(ComputeStream* stream) {
  absl::MutexLock lock(&streams_mu_);
  streams_.erase(stream);
}

void ExpertServiceImpl::BeginDrain() {
  // A stream unregisters (under streams_mu_) before it is deleted, so each
  // one here is alive; Drain only starts operations.
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (ComputeStream* stream : streams_) stream->Drain();
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
