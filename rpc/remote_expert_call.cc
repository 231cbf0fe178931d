// RemoteExperts::Call: one Submit, with failover between the replicas of
// each shard.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "model/local_experts.h"
#include "rpc/remote_experts.h"
#include "rpc/remote_replica.h"
#include "rpc/status_conversion.h"
#include "rpc/tensor_codec.h"

namespace jamba::rpc {

using ::jamba::internal::v1::ExpertRows;

// One Submit: a request per shard with rows, each sent to one replica at a
// time until one answers or none is left.
class RemoteExperts::Call final : public model::PendingExperts {
 public:
  Call(RemoteExperts* owner, int layer, Tensor* out) : owner_(owner), layer_(layer), out_(out) {}
  ~Call() override {
    for (ShardCall& c : calls_) {
      if (!c.result.has_value() && c.stream != nullptr) c.stream->Abandon(c.tag);
    }
  }

  // Builds and sends the requests; failures surface in Wait.
  void Start(const Tensor& x, const Tensor& weights, const Tensor& experts);
  absl::Status Wait() override;

 private:
  struct ShardCall {
    int shard = -1;
    std::vector<int> groups;  // indices into groups_
    std::shared_ptr<ExpertRequest> request;
    std::vector<Replica*> tried;
    // The attempt in flight.
    Replica* replica = nullptr;
    std::shared_ptr<ExpertStream> stream;
    uint64_t tag = 0;
    std::shared_ptr<PendingResponses> sink;
    absl::Time sent_at;
    // The stream was idle when the request went out, so it may have died
    // unnoticed; its failure then earns the replica one more try, on a new
    // stream (once per call).
    bool sent_on_idle_stream = false;
    bool idle_retry_used = false;
    std::optional<absl::StatusOr<ExpertResponse>> result;
  };

  // Sends c.request to a replica not tried yet; false when none is left
  // (c.result then holds why).
  bool Send(ShardCall& c, absl::Status last_failure);
  // The calls still waiting when limit_ passed: abandoned, and their
  // streams cancelled unless the caller's deadline is what passed.
  absl::Status TimedOut();
  // Checks one response against the groups it was sent and decodes them.
  absl::Status Decode(const ShardCall& c, const ExpertResponse& response, std::vector<Tensor>* ys);
  // out = Σ over groups of scales · ys, in GroupByExpert order.
  absl::Status Combine(const std::vector<Tensor>& ys);

  RemoteExperts* const owner_;
  const int layer_;
  Tensor* const out_;
  int64_t rows_ = 0;
  std::vector<model::ExpertGroup> groups_;
  std::vector<ShardCall> calls_;
  absl::Time deadline_;  // the caller's
  absl::Time limit_;     // min(deadline_, start + call timeout)
  absl::Status failed_;  // a failure before sending
};

void RemoteExperts::Call::Start(const Tensor& x, const Tensor& weights, const Tensor& experts) {
  const RemoteExperts& o = *owner_;
  JAMBA_CHECK(x.dtype() == DType::kF32 && x.rank() == 2 && x.dim(1) == o.hidden_size_ &&
              out_->shape() == x.shape())
      << "RemoteExperts: x " << x.DebugString() << " out " << out_->DebugString() << " hidden size "
      << o.hidden_size_;
  if (!o.placement_.IsMoeLayer(layer_)) {
    failed_ = absl::InvalidArgumentError(absl::StrCat("layer ", layer_, " is not an MoE layer"));
    return;
  }
  rows_ = x.dim(0);
  groups_ = model::GroupByExpert(weights, experts, o.placement_.num_experts());
  Tensor host_x = x;
  if (x.device() != Device::kCpu) {
    host_x = Tensor::Zeros(DType::kF32, x.shape());
    absl::MutexLock lock(&owner_->backend_mu_);
    owner_->backend_->Copy(x, &host_x);
  }
  // One request per shard with the rows of each of its experts: [n, H] each.
  std::vector<int> call_of(o.shards_.size(), -1);
  for (size_t i = 0; i < groups_.size(); ++i) {
    const int s = o.placement_.ShardOf(layer_, groups_[i].expert);
    JAMBA_CHECK(s >= 0) << "no shard for " << PairName(layer_, groups_[i].expert);
    if (call_of[s] < 0) {
      call_of[s] = static_cast<int>(calls_.size());
      calls_.emplace_back();
      calls_.back().shard = s;
      calls_.back().request = std::make_shared<ExpertRequest>();
      calls_.back().request->set_layer(layer_);
    }
    ShardCall& c = calls_[call_of[s]];
    c.groups.push_back(static_cast<int>(i));
    ExpertRows* rows = c.request->add_groups();
    rows->set_expert(groups_[i].expert);
    EncodeRows(host_x, groups_[i].rows, o.options_.wire_dtype, rows->mutable_x());
  }
  for (const ShardCall& c : calls_) {
    // An oversize message would fail the whole stream; refuse it here.
    const size_t bytes = c.request->ByteSizeLong();
    if (bytes > static_cast<uint64_t>(o.options_.max_request_bytes)) {
      failed_ = absl::ResourceExhaustedError(
          absl::StrCat("MoE layer ", layer_, ": the request for shard \"", o.shards_[c.shard]->name,
                       "\" would be ", bytes, " bytes, over the limit of ",
                       o.options_.max_request_bytes, "; send fewer tokens per step"));
      return;
    }
  }
  const absl::Time now = absl::Now();
  deadline_ = o.deadline();
  limit_ = std::min(deadline_, now + o.options_.call_timeout);
  if (now >= deadline_) {
    failed_ = absl::DeadlineExceededError(
        absl::StrCat("the request deadline passed before MoE layer ", layer_));
    return;
  }
  for (ShardCall& c : calls_) Send(c, absl::OkStatus());
}

bool RemoteExperts::Call::Send(ShardCall& c, absl::Status last_failure) {
  Shard& shard = *owner_->shards_[c.shard];
  for (;;) {
    Replica* replica = owner_->PickReplica(shard, c.tried);
    if (replica == nullptr) {
      c.stream = nullptr;
      c.result = absl::UnavailableError(
          absl::StrCat(last_failure.message(), "; no other replica of shard \"", shard.name,
                       "\" is left to try (", c.tried.size(), " tried)"));
      return false;
    }
    c.tried.push_back(replica);
    // A stream that broke may still hold the request: resend a copy.
    if (c.request.use_count() > 1) c.request = std::make_shared<ExpertRequest>(*c.request);
    c.tag = owner_->next_tag_.fetch_add(1, std::memory_order_relaxed);
    c.request->set_tag(c.tag);
    c.sent_at = absl::Now();
    c.request->set_timeout_us(std::max<int64_t>(1, absl::ToInt64Microseconds(limit_ - c.sent_at)));
    c.replica = replica;
    c.sink = std::make_shared<PendingResponses>(1, replica->driver);
    // A stream can break between GetStream and Send; then try a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      c.stream = replica->GetStream();
      if (c.stream->Send(c.request, c.sink, 0, &c.sent_on_idle_stream)) return true;
    }
    last_failure = absl::UnavailableError(
        absl::StrCat(replica->description, ": the stream broke before sending"));
  }
}

absl::Status RemoteExperts::Call::Wait() {
  if (!failed_.ok()) return failed_;
  const RemoteExpertsOptions& options = owner_->options_;
  bool resent = true;
  while (resent) {
    resent = false;
    for (ShardCall& c : calls_) {
      if (c.result.has_value()) continue;
      if (!c.sink->WaitUntil(limit_)) return TimedOut();
      absl::StatusOr<ExpertResponse> response = c.sink->Take(0);
      if (!response.ok()) {
        // The stream broke: the worker died or drained before reading it.
        // Experts are stateless, so another replica gives the same answer.
        if (absl::Now() >= limit_) {
          c.result = response.status();
          continue;
        }
        if (c.sent_on_idle_stream && !c.idle_retry_used) {
          c.idle_retry_used = true;
          c.tried.pop_back();  // this replica, whose next stream is new
        }
        if (Send(c, response.status())) resent = true;
        continue;
      }
      if (options.on_round_trip) {
        options.on_round_trip(owner_->shards_[c.shard]->name, c.sink->filled_at(0) - c.sent_at,
                              absl::Microseconds(response->worker_us()));
      }
      c.result = std::move(response);
    }
  }
  std::vector<Tensor> ys(groups_.size());  // [n_g, H] host
  for (const ShardCall& c : calls_) {
    RETURN_IF_ERROR(c.result->status());
    RETURN_IF_ERROR(Decode(c, **c.result, &ys));
  }
  return Combine(ys);
}

absl::Status RemoteExperts::Call::TimedOut() {
  const bool deadline_passed = absl::Now() >= deadline_;
  std::vector<std::string> late;
  for (ShardCall& c : calls_) {
    if (c.result.has_value() || c.sink->filled(0)) continue;
    c.stream->Abandon(c.tag);
    // A stuck stream is replaced on the next call; one that is merely
    // slower than the caller's deadline serves the other calls on it.
    if (!deadline_passed) c.stream->Cancel();
    late.push_back(c.replica->description);
  }
  if (deadline_passed) {
    return absl::DeadlineExceededError(
        absl::StrCat("the request deadline passed waiting for MoE layer ", layer_, " from ",
                     absl::StrJoin(late, ", ")));
  }
  return absl::UnavailableError(
      absl::StrCat("no answer within ", absl::FormatDuration(owner_->options_.call_timeout),
                   " for MoE layer ", layer_, " from ", absl::StrJoin(late, ", ")));
}

absl::Status RemoteExperts::Call::Decode(const ShardCall& c, const ExpertResponse& response,
                                         std::vector<Tensor>* ys) {
  const std::string& who = c.replica->description;
  if (response.error_code() != 0) {
    const absl::Status status = StatusFromCode(response.error_code(), response.error_message());
    return absl::Status(status.code(), absl::StrCat(who, ": ", status.message()));
  }
  if (response.outputs_size() != static_cast<int>(c.groups.size())) {
    return absl::InternalError(absl::StrCat(who, " answered ", response.outputs_size(),
                                            " expert outputs for ", c.groups.size(), " groups"));
  }
  for (size_t j = 0; j < c.groups.size(); ++j) {
    const model::ExpertGroup& group = groups_[c.groups[j]];
    const auto& output = response.outputs(static_cast<int>(j));
    if (output.expert() != group.expert) {
      return absl::InternalError(absl::StrCat(who, " answered expert ", output.expert(),
                                              " in the place of expert ", group.expert));
    }
    absl::StatusOr<Tensor> y = DecodeTensor(output.y(), owner_->hidden_size_);
    if (!y.ok()) {
      return absl::InternalError(absl::StrCat(who, " sent a bad output for expert ", group.expert,
                                              ": ", y.status().message()));
    }
    if (y->dim(0) != static_cast<int64_t>(group.rows.size())) {
      return absl::InternalError(absl::StrCat(who, " sent ", y->dim(0), " output rows for expert ",
                                              group.expert, ", want ", group.rows.size()));
    }
    (*ys)[c.groups[j]] = *std::move(y);
  }
  return absl::OkStatus();
}

absl::Status RemoteExperts::Call::Combine(const std::vector<Tensor>& ys) {
  // final_hidden_states = zeros; for each expert (ascending):
  //   final_hidden_states.index_add_(0, top_x, expert(x[top_x]) *
  //   routing_weights)
  kernels::Backend* b = owner_->backend_;
  absl::MutexLock lock(&owner_->backend_mu_);
  ASSIGN_OR_RETURN(Tensor acc, b->Allocate(DType::kF32, {rows_, owner_->hidden_size_}));
  for (size_t i = 0; i < groups_.size(); ++i) {
    ASSIGN_OR_RETURN(Tensor rows, model::UploadI32(b, groups_[i].rows));
    ASSIGN_OR_RETURN(Tensor scales, model::UploadF32(b, groups_[i].scales));
    Tensor y = ys[i];
    if (b->device() != Device::kCpu) {
      ASSIGN_OR_RETURN(y, b->Allocate(DType::kF32, ys[i].shape()));
      b->Copy(ys[i], &y);
    }
    b->ScatterAddRows(y, rows, scales, &acc);
  }
  b->Copy(acc, out_);
  return absl::OkStatus();
}

std::unique_ptr<model::PendingExperts> RemoteExperts::Submit(int layer, const Tensor& x,
                                                             const Tensor& weights,
                                                             const Tensor& experts, Tensor* out) {
  auto call = std::make_unique<Call>(this, layer, out);
  call->Start(x, weights, experts);
  return call;
}

absl::Status RemoteExperts::Run(int layer, const Tensor& x, const Tensor& weights,
                                const Tensor& experts, Tensor* out) {
  return Submit(layer, x, weights, experts, out)->Wait();
}

}  // namespace jamba::rpc
