#include "mixer_worker/remote_mixers.h"

#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "core/check.h"
#include "jamba/internal/v1/mixer.grpc.pb.h"
#include "rpc/grpc_options.h"
#include "rpc/status_conversion.h"
#include "rpc/tensor_codec.h"

namespace jamba::mixer {

using ::jamba::internal::v1::MixerInfoRequest;
using ::jamba::internal::v1::MixerInfoResponse;
using ::jamba::internal::v1::MixerRequest;
using ::jamba::internal::v1::MixerResponse;
using ::jamba::internal::v1::MixerService;

namespace {

constexpr char kDnsPrefix[] = "dns:///";

// The addresses "dns:///name:port" resolves to, as "ip:port" / "[ip6]:port".
absl::StatusOr<std::set<std::string>> ResolveDns(const std::string& target) {
  const std::string rest = target.substr(std::strlen(kDnsPrefix));
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return absl::InvalidArgumentError(absl::StrCat("mixer target '", target, "' has no port"));
  }
  const std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolving ", host, ": ", gai_strerror(rc)));
  }
  std::set<std::string> addresses;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char ip[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, ip, sizeof(ip), nullptr, 0, NI_NUMERICHOST) != 0) {
      continue;
    }
    addresses.insert(a->ai_family == AF_INET6 ? absl::StrCat("[", ip, "]:", port)
                                              : absl::StrCat(ip, ":", port));
  }
  freeaddrinfo(found);
  return addresses;
}

}  // namespace

// One mixer worker and the router's session with it. The session fields are
// used by one thread at a time (the engine's, or one call thread it waits
// for); Cancel may come from the waiting thread.
struct RemoteMixers::Replica {
  std::string target;  // "host:port"
  std::string origin;  // the --mixers entry it came from
  std::string name;    // mixer replica "host:port", for messages
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<MixerService::Stub> stub;
  std::atomic<bool> serving{false};  // the last CheckReady's finding
  std::atomic<bool> listed{true};    // false once DNS no longer names it

  uint64_t session = 1;  // bumped whenever a session ends
  int open = 0;          // sequences open in the current session
  uint64_t next_tag = 1;
  absl::Mutex mu;  // the context, for Cancel
  std::unique_ptr<grpc::ClientContext> context ABSL_GUARDED_BY(mu);
  std::unique_ptr<grpc::ClientReaderWriter<MixerRequest, MixerResponse>> stream;

  // Sends one request on the session (started if there is none) and reads
  // its response. A failure ends the session: its sequences are lost.
  absl::StatusOr<MixerResponse> Exchange(MixerRequest request) {
    if (stream == nullptr) {
      absl::MutexLock lock(&mu);
      context = std::make_unique<grpc::ClientContext>();
      stream = stub->Session(context.get());
    }
    request.set_tag(next_tag++);
    MixerResponse response;
    if (stream->Write(request) && stream->Read(&response)) {
      if (response.tag() == request.tag()) return response;
      Cancel();
      stream->Finish();
      return EndSession(absl::StrCat("answered tag ", response.tag(), " for ", request.tag()));
    }
    const grpc::Status status = stream->Finish();
    return EndSession(status.ok() ? std::string("the session was closed by the worker")
                                  : rpc::FromGrpcStatus(status).ToString());
  }

  absl::Status EndSession(const std::string& why) {
    const int lost = open;
    open = 0;
    ++session;
    stream.reset();
    {
      absl::MutexLock lock(&mu);
      context.reset();
    }
    return absl::UnavailableError(
        absl::StrCat(name, " failed (", why, "); the state of its ", lost, " sequence(s) is lost"));
  }

  void Cancel() {
    absl::MutexLock lock(&mu);
    if (context != nullptr) context->TryCancel();
  }
};

// One request to one replica, run on its own thread.
struct RemoteMixers::Call {
  Replica* replica = nullptr;
  MixerRequest request;
  absl::StatusOr<MixerResponse> result = absl::UnknownError("not run");
  std::vector<int> steps;  // for a StepBatch: the step index of each chunk
};

absl::StatusOr<std::unique_ptr<RemoteMixers>> RemoteMixers::Create(std::string model_dir,
                                                                   model::JambaConfig config,
                                                                   std::vector<std::string> targets,
                                                                   RemoteMixersOptions options) {
  if (targets.empty()) return absl::InvalidArgumentError("--mixers: no mixer target given");
  for (const std::string& target : targets) {
    if (target.empty()) return absl::InvalidArgumentError("--mixers: an empty mixer target");
  }
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the mixer call timeout must be positive");
  }
  return std::unique_ptr<RemoteMixers>(
      new RemoteMixers(std::move(model_dir), std::move(config), std::move(targets), options));
}

RemoteMixers::RemoteMixers(std::string model_dir, model::JambaConfig config,
                           std::vector<std::string> targets, RemoteMixersOptions options)
    : model_dir_(std::move(model_dir)),
      config_(std::move(config)),
      targets_(std::move(targets)),
      options_(options) {
  Resolve();
}

RemoteMixers::~RemoteMixers() {
  for (Replica* replica : Snapshot()) {
    replica->Cancel();
    if (replica->stream != nullptr) replica->stream->Finish();
  }
}

std::vector<RemoteMixers::Replica*> RemoteMixers::Snapshot() {
  absl::MutexLock lock(&mu_);
  std::vector<Replica*> all;
  for (auto& replica : replicas_) all.push_back(replica.get());
  return all;
}

std::vector<std::string> RemoteMixers::ReplicaTargets() {
  std::vector<std::string> targets;
  for (Replica* replica : Snapshot()) targets.push_back(replica->target);
  return targets;
}

void RemoteMixers::Resolve() {
  // origin -> its addresses now; a DNS name that fails to resolve keeps its
  // replicas as they were.
  std::vector<std::pair<std::string, std::set<std::string>>> found;
  for (const std::string& target : targets_) {
    if (!absl::StartsWith(target, kDnsPrefix)) {
      found.push_back({target, {target}});
      continue;
    }
    absl::StatusOr<std::set<std::string>> addresses = ResolveDns(target);
    if (addresses.ok()) found.push_back({target, *std::move(addresses)});
  }
  absl::MutexLock lock(&mu_);
  resolved_at_ = absl::Now();
  for (const auto& [origin, addresses] : found) {
    for (auto& replica : replicas_) {
      if (replica->origin == origin) replica->listed = addresses.count(replica->target) > 0;
    }
    for (const std::string& address : addresses) {
      const bool known = std::any_of(replicas_.begin(), replicas_.end(),
                                     [&](const auto& r) { return r->target == address; });
      if (known) continue;
      auto replica = std::make_unique<Replica>();
      replica->target = address;
      replica->origin = origin;
      replica->name = absl::StrCat("mixer replica ", address);
      grpc::ChannelArguments args = rpc::InternalChannelArguments(rpc::kMixerHealthService);
      if (options_.credentials != nullptr && absl::StartsWith(origin, kDnsPrefix)) {
        const std::string name = origin.substr(std::strlen(kDnsPrefix));
        args.SetSslTargetNameOverride(name.substr(0, name.rfind(':')));
      }
      replica->channel = grpc::CreateCustomChannel(address,
                                                   options_.credentials != nullptr
                                                       ? options_.credentials
                                                       : grpc::InsecureChannelCredentials(),
                                                   args);
      replica->stub = MixerService::NewStub(replica->channel);
      replicas_.push_back(std::move(replica));
    }
  }
}

void RemoteMixers::RunCalls(std::vector<Call>& calls, absl::Time deadline) {
  std::vector<std::unique_ptr<absl::Notification>> done;
  std::vector<std::thread> threads;
  for (Call& call : calls) {
    done.push_back(std::make_unique<absl::Notification>());
    threads.emplace_back([&call, finished = done.back().get()] {
      call.result = call.replica->Exchange(call.request);
      finished->Notify();
    });
  }
  std::vector<bool> late(calls.size(), false);
  for (size_t i = 0; i < calls.size(); ++i) {
    if (done[i]->WaitForNotificationWithDeadline(deadline)) continue;
    late[i] = true;
    calls[i].replica->Cancel();
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < calls.size(); ++i) {
    if (!late[i]) continue;
    calls[i].result = absl::Status(
        absl::Now() >= deadline ? absl::StatusCode::kDeadlineExceeded
                                : absl::StatusCode::kUnavailable,
        absl::StrCat(calls[i].replica->name, " did not answer in time; the session was cancelled (",
                     calls[i].result.status().message(), ")"));
  }
}

absl::Status RemoteMixers::CheckReady(absl::Duration timeout) {
  bool resolve;
  {
    absl::MutexLock lock(&mu_);
    resolve = absl::Now() - resolved_at_ >= options_.resolve_interval;
  }
  if (resolve) Resolve();
  struct Probe {
    Replica* replica = nullptr;
    grpc::ClientContext context;
    MixerInfoResponse response;
    grpc::Status status;
    absl::Notification done;
  };
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::unique_ptr<Probe>> probes;
  for (Replica* replica : Snapshot()) {
    if (!replica->listed) {
      replica->serving = false;
      continue;
    }
    auto probe = std::make_unique<Probe>();
    probe->replica = replica;
    probe->context.set_deadline(absl::ToChronoTime(deadline));
    probe->context.set_wait_for_ready(true);
    Probe* p = probe.get();
    MixerInfoRequest request;
    replica->stub->async()->GetMixerInfo(&p->context, &request, &p->response,
                                         [p](grpc::Status status) {
                                           p->status = std::move(status);
                                           p->done.Notify();
                                         });
    probes.push_back(std::move(probe));
  }
  std::vector<std::string> problems;
  int serving = 0;
  for (auto& p : probes) {
    p->done.WaitForNotification();
    std::string problem;
    if (!p->status.ok()) {
      problem = rpc::FromGrpcStatus(p->status).ToString();
    } else if (p->response.vocab_size() != config_.vocab_size ||
               p->response.hidden_size() != config_.hidden_size ||
               p->response.num_hidden_layers() != config_.num_hidden_layers) {
      problem = absl::StrCat("serves a model of vocab ", p->response.vocab_size(), ", hidden ",
                             p->response.hidden_size(), ", ", p->response.num_hidden_layers(),
                             " layers; the router's has ", config_.vocab_size, ", ",
                             config_.hidden_size, ", ", config_.num_hidden_layers);
    } else if (!p->response.serving()) {
      problem = "not serving";
    }
    p->replica->serving = problem.empty();
    if (problem.empty()) {
      ++serving;
    } else {
      problems.push_back(absl::StrCat(p->replica->name, ": ", problem));
    }
  }
  if (serving > 0) return absl::OkStatus();
  if (problems.empty()) problems.push_back("no address resolved");
  return absl::UnavailableError(
      absl::StrCat("no mixer replica is serving: ", absl::StrJoin(problems, "; ")));
}

absl::Status RemoteMixers::AddSequence(uint64_t id, int64_t reserve_tokens) {
  if (pins_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " already exists"));
  }
  std::vector<Replica*> candidates;
  for (Replica* replica : Snapshot()) {
    if (replica->listed && replica->serving) candidates.push_back(replica);
  }
  if (candidates.empty()) {  // no finding yet: try every listed one
    for (Replica* replica : Snapshot()) {
      if (replica->listed) candidates.push_back(replica);
    }
  }
  // Fewest open sequences first; ties in turn.
  std::rotate(candidates.begin(),
              candidates.begin() + (candidates.empty() ? 0 : next_pick_++ % candidates.size()),
              candidates.end());
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Replica* a, const Replica* b) { return a->open < b->open; });
  std::vector<std::string> refused;
  for (Replica* replica : candidates) {
    std::vector<Call> calls(1);
    calls[0].replica = replica;
    calls[0].request.mutable_open()->set_sequence_id(id);
    calls[0].request.mutable_open()->set_reserve_tokens(reserve_tokens);
    RunCalls(calls, absl::Now() + options_.call_timeout);
    absl::Status status = calls[0].result.status();
    if (status.ok() && calls[0].result->error_code() != 0) {
      status =
          rpc::StatusFromCode(calls[0].result->error_code(),
                              absl::StrCat(replica->name, ": ", calls[0].result->error_message()));
    }
    if (status.ok()) {
      pins_[id] = Pin{replica, replica->session};
      ++replica->open;
      return absl::OkStatus();
    }
    if (!absl::IsUnavailable(status)) return status;
    refused.push_back(std::string(status.message()));
  }
  return absl::UnavailableError(absl::StrCat(
      "no mixer replica took the sequence: ",
      refused.empty() ? std::string("none is serving") : absl::StrJoin(refused, "; ")));
}

void RemoteMixers::ReleaseSequence(uint64_t id) {
  auto it = pins_.find(id);
  if (it == pins_.end()) return;
  const Pin pin = it->second;
  pins_.erase(it);
  if (pin.session != pin.replica->session) return;  // its state is gone already
  --pin.replica->open;
  std::vector<Call> calls(1);
  calls[0].replica = pin.replica;
  calls[0].request.mutable_close()->add_sequence_ids(id);
  RunCalls(calls, absl::Now() + options_.call_timeout);  // a failure ends the session
}

absl::StatusOr<Tensor> RemoteMixers::Forward(absl::Span<const MixerStep> steps, absl::Time deadline,
                                             absl::Span<absl::Status> step_status) {
  JAMBA_CHECK(step_status.size() == steps.size())
      << "Forward: " << step_status.size() << " statuses for " << steps.size() << " steps";
  if (steps.empty()) return absl::InvalidArgumentError("empty batch");
  const int64_t V = config_.vocab_size;
  Tensor logits = Tensor::Zeros(DType::kF32, {static_cast<int64_t>(steps.size()), V});
  std::vector<Call> calls;
  absl::flat_hash_map<Replica*, size_t> call_of;
  for (size_t i = 0; i < steps.size(); ++i) {
    step_status[i] = absl::OkStatus();
    auto it = pins_.find(steps[i].sequence_id);
    if (it == pins_.end()) {
      step_status[i] = absl::NotFoundError(absl::StrCat("unknown sequence ", steps[i].sequence_id));
      continue;
    }
    const Pin& pin = it->second;
    if (pin.session != pin.replica->session) {
      step_status[i] = absl::UnavailableError(
          absl::StrCat(pin.replica->name, " failed; the sequence's state is lost"));
      continue;
    }
    auto [slot, added] = call_of.try_emplace(pin.replica, calls.size());
    if (added) {
      calls.emplace_back();
      calls.back().replica = pin.replica;
      if (deadline != absl::InfiniteFuture()) {
        calls.back().request.mutable_step()->set_deadline_unix_micros(absl::ToUnixMicros(deadline));
      }
    }
    Call& call = calls[slot->second];
    auto* chunk = call.request.mutable_step()->add_chunks();
    chunk->set_sequence_id(steps[i].sequence_id);
    chunk->mutable_tokens()->Add(steps[i].tokens.begin(), steps[i].tokens.end());
    call.steps.push_back(static_cast<int>(i));
  }
  // The workers end their expert calls by `deadline` themselves; waiting
  // longer than call_timeout means a replica is stuck, and cancelling its
  // session fails every sequence on it, so a request's own deadline is no
  // reason to.
  RunCalls(calls, absl::Now() + options_.call_timeout);
  for (Call& call : calls) {
    absl::Status status = call.result.status();
    absl::StatusOr<Tensor> rows = absl::UnknownError("");
    if (status.ok() && call.result->error_code() != 0) {
      status =
          rpc::StatusFromCode(call.result->error_code(),
                              absl::StrCat(call.replica->name, ": ", call.result->error_message()));
    }
    if (status.ok()) {
      rows = rpc::DecodeTensor(call.result->logits(), V);
      if (!rows.ok() || rows->dim(0) != static_cast<int64_t>(call.steps.size())) {
        status = absl::InternalError(absl::StrCat(
            call.replica->name, " sent bad logits: ",
            rows.ok() ? absl::StrCat(rows->dim(0), " rows for ", call.steps.size(), " chunks")
                      : std::string(rows.status().message())));
      }
    }
    if (status.ok() && options_.on_routed) {
      for (const auto& routed : call.result->routed()) {
        options_.on_routed(routed.layer(), routed.expert(), routed.rows());
      }
    }
    for (size_t j = 0; j < call.steps.size(); ++j) {
      const int i = call.steps[j];
      if (!status.ok()) {
        step_status[i] = status;
        continue;
      }
      std::memcpy(logits.data<float>() + i * V, rows->data<float>() + j * V, V * sizeof(float));
    }
  }
  return logits;
}

}  // namespace jamba::mixer
