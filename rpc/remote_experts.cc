#include "rpc/remote_experts.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "model/local_experts.h"
#include "rpc/grpc_options.h"
#include "rpc/status_conversion.h"
#include "rpc/tensor_codec.h"

namespace jamba::rpc {

using ::jamba::internal::v1::ExpertRows;
using ::jamba::internal::v1::ShardInfoRequest;
using ::jamba::internal::v1::ShardInfoResponse;

// One target of a shard: its channel and its current Compute stream.
struct RemoteExperts::Replica {
  std::string target;
  std::string description;  // shard "s0" (target 127.0.0.1:5001)
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ExpertService::Stub> stub;
  absl::Duration stream_max_age;

  absl::Mutex mu;
  std::shared_ptr<ExpertStream> stream ABSL_GUARDED_BY(mu);
  // Broken streams gRPC may not be done with yet.
  std::vector<std::shared_ptr<ExpertStream>> retired ABSL_GUARDED_BY(mu);

  // The open stream, started anew when there is none, it broke or it is
  // old enough to retire.
  std::shared_ptr<ExpertStream> GetStream() {
    absl::MutexLock lock(&mu);
    const bool old = stream != nullptr && absl::Now() - stream->started() >= stream_max_age;
    if (old) stream->Retire();
    if (stream == nullptr || old || stream->broken()) {
      std::vector<std::shared_ptr<ExpertStream>> live;
      for (auto& s : retired) {
        if (!s->done()) live.push_back(std::move(s));
      }
      if (stream != nullptr) live.push_back(std::move(stream));
      retired = std::move(live);
      stream = ExpertStream::Start(stub.get(), description);
    }
    return stream;
  }

  void Shutdown() {
    std::vector<std::shared_ptr<ExpertStream>> all;
    {
      absl::MutexLock lock(&mu);
      all = std::move(retired);
      if (stream != nullptr) all.push_back(std::move(stream));
    }
    for (auto& s : all) s->Cancel();
    for (auto& s : all) s->WaitDone();
  }
};

absl::StatusOr<std::unique_ptr<RemoteExperts>> RemoteExperts::Create(ExpertPlacement placement,
                                                                     int64_t hidden_size,
                                                                     kernels::Backend* backend,
                                                                     RemoteExpertsOptions options) {
  if (!IsWireDType(options.wire_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("wire dtype ", DTypeName(options.wire_dtype),
                                                   " is not supported (use F32 or BF16)"));
  }
  if (hidden_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("hidden size ", hidden_size, " must be > 0"));
  }
  if (backend == nullptr) return absl::InvalidArgumentError("RemoteExperts needs a backend");
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the expert call timeout must be positive");
  }
  return std::unique_ptr<RemoteExperts>(
      new RemoteExperts(std::move(placement), hidden_size, backend, std::move(options)));
}

RemoteExperts::RemoteExperts(ExpertPlacement placement, int64_t hidden_size,
                             kernels::Backend* backend, RemoteExpertsOptions options)
    : placement_(std::move(placement)),
      hidden_size_(hidden_size),
      backend_(backend),
      options_(std::move(options)) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options_.credentials != nullptr ? options_.credentials : grpc::InsecureChannelCredentials();
  for (const ShardSpec& spec : placement_.shards()) {
    auto shard = std::make_unique<Shard>();
    shard->name = spec.name;
    for (const std::string& target : spec.targets) {
      auto replica = std::make_unique<Replica>();
      replica->target = target;
      replica->description = absl::StrCat("shard \"", spec.name, "\" (target ", target, ")");
      replica->channel = grpc::CreateCustomChannel(target, credentials, InternalChannelArguments());
      replica->stub = ExpertService::NewStub(replica->channel);
      replica->stream_max_age = options_.stream_max_age;
      shard->replicas.push_back(std::move(replica));
    }
    shards_.push_back(std::move(shard));
  }
}

RemoteExperts::~RemoteExperts() {
  for (auto& shard : shards_) {
    for (auto& replica : shard->replicas) replica->Shutdown();
  }
}

RemoteExperts::Replica* RemoteExperts::PickReplica(Shard& shard) {
  const size_t n = shard.replicas.size();
  const uint64_t start = shard.next_replica.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    Replica* replica = shard.replicas[(start + i) % n].get();
    if (replica->channel->GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE) return replica;
  }
  return shard.replicas[start % n].get();
}

std::string RemoteExperts::Describe(const Sent& sent) const { return sent.replica->description; }

void RemoteExperts::SendAll(std::vector<ExpertRequest>& requests,
                            const std::shared_ptr<PendingResponses>& sink,
                            std::vector<Sent>* sent) {
  for (size_t s = 0; s < requests.size(); ++s) {
    if (requests[s].groups_size() == 0) continue;
    Sent one;
    one.shard = static_cast<int>(s);
    one.replica = PickReplica(*shards_[s]);
    one.tag = next_tag_.fetch_add(1, std::memory_order_relaxed);
    requests[s].set_tag(one.tag);
    const int slot = static_cast<int>(sent->size());
    // A stream can break between GetStream and Send; then try a fresh one.
    bool queued = false;
    for (int attempt = 0; attempt < 2 && !queued; ++attempt) {
      one.stream = one.replica->GetStream();
      queued = one.stream->Send(&requests[s], sink, slot);
    }
    if (!queued) {
      sink->Deliver(slot, absl::UnavailableError(
                              absl::StrCat(Describe(one), ": the stream broke before sending")));
    }
    sent->push_back(std::move(one));
  }
}

absl::Status RemoteExperts::CheckResponse(const Sent& sent,
                                          const std::vector<model::ExpertGroup>& groups,
                                          const std::vector<int>& sent_groups,
                                          absl::StatusOr<ExpertResponse> result,
                                          std::vector<Tensor>* ys) {
  if (!result.ok()) return result.status();
  const ExpertResponse& response = *result;
  if (response.error_code() != 0) {
    const absl::Status status = StatusFromCode(response.error_code(), response.error_message());
    return absl::Status(status.code(), absl::StrCat(Describe(sent), ": ", status.message()));
  }
  if (response.outputs_size() != static_cast<int>(sent_groups.size())) {
    return absl::InternalError(absl::StrCat(Describe(sent), " answered ", response.outputs_size(),
                                            " expert outputs for ", sent_groups.size(), " groups"));
  }
  for (size_t j = 0; j < sent_groups.size(); ++j) {
    const model::ExpertGroup& group = groups[sent_groups[j]];
    const auto& output = response.outputs(static_cast<int>(j));
    if (output.expert() != group.expert) {
      return absl::InternalError(absl::StrCat(Describe(sent), " answered expert ", output.expert(),
                                              " in the place of expert ", group.expert));
    }
    absl::StatusOr<Tensor> y = DecodeTensor(output.y(), hidden_size_);
    if (!y.ok()) {
      return absl::InternalError(absl::StrCat(Describe(sent), " sent a bad output for expert ",
                                              group.expert, ": ", y.status().message()));
    }
    if (y->dim(0) != static_cast<int64_t>(group.rows.size())) {
      return absl::InternalError(absl::StrCat(Describe(sent), " sent ", y->dim(0),
                                              " output rows for expert ", group.expert, ", want ",
                                              group.rows.size()));
    }
    (*ys)[sent_groups[j]] = *std::move(y);
  }
  return absl::OkStatus();
}

absl::Status RemoteExperts::Run(int layer, const Tensor& x, const Tensor& weights,
                                const Tensor& experts, Tensor* out) {
  if (!placement_.IsMoeLayer(layer)) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is not an MoE layer"));
  }
  JAMBA_CHECK(x.dtype() == DType::kF32 && x.rank() == 2 && x.dim(1) == hidden_size_ &&
              out->shape() == x.shape())
      << "RemoteExperts::Run: x " << x.DebugString() << " out " << out->DebugString()
      << " hidden size " << hidden_size_;
  const std::vector<model::ExpertGroup> groups =
      model::GroupByExpert(weights, experts, placement_.num_experts());

  // One request per shard with the rows of each of its experts: [n, H] each.
  Tensor host_x = x;
  if (x.device() != Device::kCpu) {
    host_x = Tensor::Zeros(DType::kF32, x.shape());
    absl::MutexLock lock(&backend_mu_);
    backend_->Copy(x, &host_x);
  }
  std::vector<ExpertRequest> requests(shards_.size());
  std::vector<std::vector<int>> shard_groups(shards_.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const int s = placement_.ShardOf(layer, groups[i].expert);
    JAMBA_CHECK(s >= 0) << "no shard for " << PairName(layer, groups[i].expert);
    shard_groups[s].push_back(static_cast<int>(i));
    ExpertRows* rows = requests[s].add_groups();
    rows->set_expert(groups[i].expert);
    EncodeRows(host_x, groups[i].rows, options_.wire_dtype, rows->mutable_x());
  }
  int num_sent = 0;
  for (size_t s = 0; s < requests.size(); ++s) {
    requests[s].set_layer(layer);
    if (shard_groups[s].empty()) continue;
    ++num_sent;
    // An oversize message would fail the whole stream; refuse it here.
    const size_t bytes = requests[s].ByteSizeLong();
    if (bytes > static_cast<uint64_t>(options_.max_request_bytes)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("MoE layer ", layer, ": the request for shard \"", shards_[s]->name,
                       "\" would be ", bytes, " bytes, over the limit of ",
                       options_.max_request_bytes, "; send fewer tokens per step"));
    }
  }
  auto sink = std::make_shared<PendingResponses>(num_sent);
  std::vector<Sent> sent;
  const int64_t deadline_ns = deadline_ns_.load();
  const absl::Time deadline =
      deadline_ns == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(deadline_ns);
  const absl::Time sent_at = absl::Now();
  SendAll(requests, sink, &sent);
  if (!sink->WaitUntil(std::min(sent_at + options_.call_timeout, deadline))) {
    std::vector<std::string> late;
    for (size_t i = 0; i < sent.size(); ++i) {
      if (sink->filled(static_cast<int>(i))) continue;
      sent[i].stream->Abandon(sent[i].tag);
      sent[i].stream->Cancel();  // a stuck stream is replaced on the next call
      late.push_back(Describe(sent[i]));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the request deadline passed waiting for MoE layer ", layer, " from ",
                       absl::StrJoin(late, ", ")));
    }
    return absl::UnavailableError(
        absl::StrCat("no answer within ", absl::FormatDuration(options_.call_timeout),
                     " for MoE layer ", layer, " from ", absl::StrJoin(late, ", ")));
  }
  if (options_.on_round_trip) {
    for (size_t i = 0; i < sent.size(); ++i) {
      options_.on_round_trip(shards_[sent[i].shard]->name,
                             sink->filled_at(static_cast<int>(i)) - sent_at);
    }
  }
  std::vector<Tensor> ys(groups.size());  // [n_g, H] host
  for (size_t i = 0; i < sent.size(); ++i) {
    RETURN_IF_ERROR(CheckResponse(sent[i], groups, shard_groups[sent[i].shard],
                                  sink->Take(static_cast<int>(i)), &ys));
  }

  // final_hidden_states = zeros; for each expert (ascending):
  //   final_hidden_states.index_add_(0, top_x, expert(x[top_x]) *
  //   routing_weights)
  absl::MutexLock lock(&backend_mu_);
  ASSIGN_OR_RETURN(Tensor acc, backend_->Allocate(DType::kF32, {x.dim(0), hidden_size_}));
  for (size_t i = 0; i < groups.size(); ++i) {
    ASSIGN_OR_RETURN(Tensor rows, model::UploadI32(backend_, groups[i].rows));
    ASSIGN_OR_RETURN(Tensor scales, model::UploadF32(backend_, groups[i].scales));
    Tensor y = ys[i];
    if (backend_->device() != Device::kCpu) {
      ASSIGN_OR_RETURN(y, backend_->Allocate(DType::kF32, ys[i].shape()));
      backend_->Copy(ys[i], &y);
    }
    backend_->ScatterAddRows(y, rows, scales, &acc);
  }
  backend_->Copy(acc, out);
  return absl::OkStatus();
}

absl::Status RemoteExperts::WaitUntilReady(absl::Duration timeout) {
  struct Probe {
    int shard = 0;
    Replica* replica = nullptr;
    grpc::ClientContext context;
    ShardInfoRequest request;
    ShardInfoResponse response;
    grpc::Status status;
    absl::Notification done;
  };
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::unique_ptr<Probe>> probes;
  for (size_t s = 0; s < shards_.size(); ++s) {
    for (auto& replica : shards_[s]->replicas) {
      auto probe = std::make_unique<Probe>();
      probe->shard = static_cast<int>(s);
      probe->replica = replica.get();
      probe->context.set_deadline(absl::ToChronoTime(deadline));
      probe->context.set_wait_for_ready(true);
      Probe* p = probe.get();
      replica->stub->async()->GetShardInfo(&p->context, &p->request, &p->response,
                                           [p](grpc::Status status) {
                                             p->status = std::move(status);
                                             p->done.Notify();
                                           });
      probes.push_back(std::move(probe));
    }
  }
  for (auto& p : probes) p->done.WaitForNotification();
  for (auto& p : probes) {
    const std::string& who = p->replica->description;
    if (!p->status.ok()) {
      return absl::UnavailableError(
          absl::StrCat(who, ": GetShardInfo failed: ", FromGrpcStatus(p->status).ToString()));
    }
    if (p->response.hidden_size() != hidden_size_) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, " has hidden size ", p->response.hidden_size(), ", want ", hidden_size_));
    }
    const std::set<std::string> hosted(p->response.experts().begin(), p->response.experts().end());
    for (const auto& [layer, e] : placement_.ExpertsOf(p->shard)) {
      if (hosted.count(PairName(layer, e)) == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(who, " does not host expert ", PairName(layer, e),
                         " (layer:expert) that the placement puts there"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace jamba::rpc
