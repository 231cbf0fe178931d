#include "rpc/remote_experts.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/spin_wait.h"
#include "core/status_macros.h"
#include "rpc/grpc_options.h"
#include "rpc/grpc_tsan.h"
#include "rpc/remote_replica.h"
#include "rpc/status_conversion.h"
#include "rpc/tensor_codec.h"

namespace jamba::rpc {

using ::jamba::internal::v1::ShardInfoRequest;
using ::jamba::internal::v1::ShardInfoResponse;

namespace {
// Tries one call may make on one dns:/// target (a new stream each time).
constexpr int kDnsTargetTries = 3;
}  // namespace

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
      options_(std::move(options)),
      driver_(std::make_unique<CompletionDriver>(RpcSpinMicros())) {
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
      replica->driver = driver_.get();
      replica->stream_max_age = options_.stream_max_age;
      replica->max_tries = absl::StartsWith(target, "dns:") ? kDnsTargetTries : 1;
      shard->replicas.push_back(std::move(replica));
    }
    shards_.push_back(std::move(shard));
  }
}

RemoteExperts::~RemoteExperts() {
  for (auto& shard : shards_) {
    for (auto& replica : shard->replicas) replica->Shutdown();
  }
  driver_.reset();  // every stream is done: nothing is pending on its queue
}

RemoteExperts::Replica* RemoteExperts::PickReplica(Shard& shard,
                                                   const std::vector<Replica*>& tried) {
  const size_t n = shard.replicas.size();
  const uint64_t start = shard.next_replica.fetch_add(1, std::memory_order_relaxed);
  Replica* best = nullptr;
  int best_rank = 3;
  for (size_t i = 0; i < n && best_rank > 0; ++i) {
    Replica* replica = shard.replicas[(start + i) % n].get();
    if (std::count(tried.begin(), tried.end(), replica) >= replica->max_tries) continue;
    const grpc_connectivity_state state = replica->channel->GetState(false);
    const int rank = state == GRPC_CHANNEL_READY || state == GRPC_CHANNEL_IDLE ? 0
                     : state == GRPC_CHANNEL_CONNECTING                        ? 1
                                                                               : 2;
    if (rank < best_rank) {
      best = replica;
      best_rank = rank;
    }
  }
  return best;
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
      GrpcOpStarts(p);
      replica->stub->async()->GetShardInfo(&p->context, &p->request, &p->response,
                                           [p](grpc::Status status) {
                                             GrpcReactionStarts(p);
                                             p->status = std::move(status);
                                             p->done.Notify();
                                           });
      probes.push_back(std::move(probe));
    }
  }
  for (auto& p : probes) p->done.WaitForNotification();
  // A replica that answers against the placement is a configuration error;
  // one that does not answer only matters when its whole shard is silent.
  std::vector<std::vector<std::string>> silent(shards_.size());
  std::vector<bool> answered(shards_.size(), false);
  for (auto& p : probes) {
    const std::string& who = p->replica->description;
    if (!p->status.ok()) {
      silent[p->shard].push_back(
          absl::StrCat(who, ": GetShardInfo failed: ", FromGrpcStatus(p->status).ToString()));
      continue;
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
    answered[p->shard] = true;
  }
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (!answered[s]) return absl::UnavailableError(absl::StrJoin(silent[s], "; "));
  }
  return absl::OkStatus();
}

}  // namespace jamba::rpc
