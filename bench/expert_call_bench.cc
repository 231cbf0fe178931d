// jamba-expert-call-bench: where the time of one expert call goes.
//
// Local mode (--model DIR --experts 0,2,4,6) loads those experts of every
// MoE layer, as a worker does, and times on this thread: memory read
// bandwidth, LocalExperts::RunGroups (the compute alone) and
// ExpertServiceImpl::Handle (request decode, compute, response encode) for
// requests of --rows rows to one expert. "cold" cycles over every hosted
// (layer, expert) pair, as decode does, so the weights come from memory;
// "warm" repeats one pair, whose weights then sit in cache. Thread count:
// JAMBA_NUM_THREADS. --expert_weights int8 quantises the experts at load,
// as the worker's flag does.
//
// Remote mode (--target HOST:PORT, a running jamba-expert-worker) sends the
// same requests one at a time over one Compute stream, as the router does,
// and splits each round trip into the worker's reported time and the rest
// (transport). --rows 0 sends a group with no rows: transport alone.
//
// --sync_echo measures the same requests against an in-process server
// using gRPC's synchronous API on both ends (one thread per side reads,
// answers at once and writes), for comparison with the callback API that
// the worker and the router use.
//
//   jamba-expert-call-bench --model DIR --experts 0,2,4,6 --rows 1
//   jamba-expert-call-bench --target 127.0.0.1:5001 --rows 0
//   jamba-expert-call-bench --sync_echo --rows 1
// Prints one line per case: p50 / p90 / min in microseconds.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/check.h"
#include "core/process_tuning.h"
#include "core/spin_wait.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "expert_worker/expert_service.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "model/local_experts.h"
#include "model/weight_loader.h"
#include "rpc/expert_placement.h"
#include "rpc/expert_stream.h"
#include "rpc/grpc_options.h"
#include "rpc/tensor_codec.h"

ABSL_FLAG(std::string, model, "", "local mode: checkpoint directory");
ABSL_FLAG(std::string, experts, "0,2,4,6", "local mode: experts of every MoE layer to load");
ABSL_FLAG(std::string, target, "", "remote mode: a jamba-expert-worker's HOST:PORT");
ABSL_FLAG(bool, sync_echo, false,
          "instead: round trips over loopback to an in-process synchronous-API Compute "
          "that answers at once (the transport floor of gRPC on this machine)");
ABSL_FLAG(int, rows, 1, "rows per request (decode: 1)");
ABSL_FLAG(int, calls, 400, "timed calls per case");
ABSL_FLAG(std::string, wire, "f32", "wire dtype of the rows: f32 or bf16");
ABSL_FLAG(std::string, expert_weights, "stored",
          "local mode: \"stored\" or \"int8\" (as the worker's --expert_weights)");

namespace jamba {
namespace {

using ::jamba::internal::v1::ExpertRequest;
using ::jamba::internal::v1::ExpertResponse;

struct Pair {
  int layer;
  int expert;
};

// Prints p50 / p90 / min of `us` (microseconds) under `label`.
void Report(const std::string& label, std::vector<double> us) {
  JAMBA_CHECK(!us.empty());
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<size_t>(q * (us.size() - 1))]; };
  std::printf("%-44s p50 %8.1f  p90 %8.1f  min %8.1f us  (n=%zu)\n", label.c_str(), at(0.5),
              at(0.9), us.front(), us.size());
  std::fflush(stdout);
}

double ElapsedUs(absl::Time since) { return absl::ToDoubleMicroseconds(absl::Now() - since); }

// The request for `rows` random rows [rows, H] to one expert.
std::shared_ptr<ExpertRequest> MakeRequest(const Pair& pair, int64_t rows, int64_t hidden,
                                           DType wire, std::mt19937* rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor x = Tensor::Zeros(DType::kF32, {rows, hidden});  // [rows, H]
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(*rng);
  auto request = std::make_shared<ExpertRequest>();
  request->set_layer(pair.layer);
  auto* group = request->add_groups();
  group->set_expert(pair.expert);
  rpc::EncodeTensor(x, wire, group->mutable_x());
  return request;
}

// Runs `call` on request i of `pairs` for the cold (every pair in turn) and
// warm (the first pair only) cases; `call` returns microseconds.
void ColdAndWarm(const std::string& what, const std::vector<Pair>& pairs, int calls,
                 const std::function<double(const Pair&)>& call) {
  for (int i = 0; i < static_cast<int>(pairs.size()); ++i) call(pairs[i]);  // warm-up
  for (const bool cold : {true, false}) {
    std::vector<double> us;
    for (int i = 0; i < calls; ++i) us.push_back(call(cold ? pairs[i % pairs.size()] : pairs[0]));
    Report(what + (cold ? " (cold)" : " (warm)"), std::move(us));
  }
}

// GB/s of summing `bytes` of memory on the default thread pool.
double ReadBandwidth(int64_t bytes) {
  std::vector<uint64_t> buffer(bytes / sizeof(uint64_t), 1);
  std::vector<uint64_t> sums(ThreadPool::Default().num_threads() * 8, 0);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const absl::Time start = absl::Now();
    const int64_t n = static_cast<int64_t>(buffer.size());
    const int64_t chunk =
        (n + ThreadPool::Default().num_threads() - 1) / ThreadPool::Default().num_threads();
    ThreadPool::Default().ParallelFor(n, chunk, [&](int64_t b, int64_t e) {
      uint64_t s[4] = {0, 0, 0, 0};  // independent sums: no add latency chain
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        for (int k = 0; k < 4; ++k) s[k] += buffer[i + k];
      }
      for (; i < e; ++i) s[0] += buffer[i];
      sums[(b / chunk) * 8] += s[0] + s[1] + s[2] + s[3];
    });
    best = std::max(best, bytes / absl::ToDoubleSeconds(absl::Now() - start) * 1e-9);
  }
  JAMBA_CHECK(sums[0] > 0);
  return best;
}

absl::Status RunLocal(int rows, int calls, DType wire) {
  ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> checkpoint,
                   model::Checkpoint::Open(absl::GetFlag(FLAGS_model)));
  const model::JambaConfig& config = checkpoint->config();
  ASSIGN_OR_RETURN(model::LocalExperts::HostPredicate hosts,
                   rpc::ParseExpertsFlag(absl::GetFlag(FLAGS_experts), config));
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
                   kernels::CreateBackend(kernels::BackendKind::kCpu));
  ASSIGN_OR_RETURN(const model::ExpertWeights expert_weights,
                   model::ParseExpertWeights(absl::GetFlag(FLAGS_expert_weights)));
  model::WeightLoader loader(checkpoint.get(), backend.get());
  ASSIGN_OR_RETURN(std::unique_ptr<model::LocalExperts> experts,
                   model::LocalExperts::Load(loader, backend.get(), hosts, expert_weights));
  ASSIGN_OR_RETURN(const int64_t weight_bytes, expert::ExpertWeightBytes(*checkpoint, hosts));
  std::vector<Pair> pairs;
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (int e = 0; e < config.num_experts; ++e) {
      if (experts->Hosts(layer, e)) pairs.push_back({layer, e});
    }
  }
  const int64_t per_expert = weight_bytes / static_cast<int64_t>(pairs.size());
  std::printf("threads %d, %zu experts hosted, %.2f MiB of weights per expert as stored\n",
              ThreadPool::Default().num_threads(), pairs.size(), per_expert / 1048576.0);
  const double gbps = ReadBandwidth(int64_t{256} << 20);
  std::printf("memory read bandwidth %.1f GB/s: one expert's weights take %.0f us to read\n", gbps,
              per_expert / gbps * 1e-3);

  std::mt19937 rng(1);
  const int64_t hidden = config.hidden_size;
  ColdAndWarm("RunGroups", pairs, calls, [&](const Pair& p) {
    Tensor x = Tensor::Zeros(DType::kF32, {rows, hidden});  // [rows, H]
    const absl::Time start = absl::Now();
    const absl::Status ok = experts->RunGroups(p.layer, {p.expert}, {x}).status();
    JAMBA_CHECK(ok.ok()) << ok;
    return ElapsedUs(start);
  });
  expert::ExpertServiceImpl service(config, experts.get(), {});
  ColdAndWarm("Handle (decode, compute, encode)", pairs, calls, [&](const Pair& p) {
    std::shared_ptr<ExpertRequest> request = MakeRequest(p, rows, hidden, wire, &rng);
    const absl::Time start = absl::Now();
    const ExpertResponse response = service.Handle(*request, start);
    JAMBA_CHECK(response.error_code() == 0) << response.error_message();
    return ElapsedUs(start);
  });
  return absl::OkStatus();
}

// Answers each request at once with an empty response of the same tag.
class EchoService final : public internal::v1::ExpertService::Service {
 public:
  grpc::Status Compute(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<ExpertResponse, ExpertRequest>* stream) override {
    ExpertRequest request;
    while (stream->Read(&request)) {
      ExpertResponse response;
      response.set_tag(request.tag());
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }
};

absl::Status RunSyncEcho(int rows, int calls, DType wire) {
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return absl::UnavailableError("cannot start the echo server");
  auto channel =
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                grpc::InsecureChannelCredentials(), grpc::ChannelArguments());
  auto stub = internal::v1::ExpertService::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->Compute(&context);
  std::mt19937 rng(1);
  const std::shared_ptr<ExpertRequest> request = MakeRequest({0, 0}, rows, 512, wire, &rng);
  std::vector<double> us;
  for (int i = 0; i < calls + 20; ++i) {
    ExpertResponse response;
    const absl::Time start = absl::Now();
    JAMBA_CHECK(stream->Write(*request) && stream->Read(&response)) << "the echo stream broke";
    if (i >= 20) us.push_back(ElapsedUs(start));
  }
  Report("sync API echo round trip", std::move(us));
  stream->WritesDone();
  JAMBA_CHECK(stream->Finish().ok());
  // The router's client (completion-queue API, one polling thread) against
  // the same server.
  rpc::CompletionDriver driver(DefaultSpinMicros());
  std::shared_ptr<rpc::ExpertStream> client = rpc::ExpertStream::Start(stub.get(), &driver, "echo");
  us.clear();
  for (int i = 0; i < calls + 20; ++i) {
    request->set_tag(i + 1);
    auto sink = std::make_shared<rpc::PendingResponses>(1, &driver);
    const absl::Time start = absl::Now();
    JAMBA_CHECK(client->Send(request, sink, 0)) << "the echo stream broke";
    JAMBA_CHECK(sink->WaitUntil(absl::InfiniteFuture()) && sink->Take(0).ok());
    if (i >= 20) us.push_back(ElapsedUs(start));
  }
  Report("router's client, sync echo round trip", std::move(us));
  client->Retire();
  client->WaitDone();
  server->Shutdown();
  return absl::OkStatus();
}

absl::Status RunRemote(int rows, int calls, DType wire) {
  auto channel =
      grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(),
                                rpc::InternalChannelArguments());
  auto stub = internal::v1::ExpertService::NewStub(channel);
  internal::v1::ShardInfoResponse info;
  grpc::ClientContext info_context;
  info_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  info_context.set_wait_for_ready(true);
  const grpc::Status got = stub->GetShardInfo(&info_context, {}, &info);
  if (!got.ok()) return absl::UnavailableError("GetShardInfo: " + got.error_message());
  std::vector<Pair> pairs;
  for (const std::string& name : info.experts()) {
    std::vector<std::string> parts = absl::StrSplit(name, ':');
    Pair p;
    JAMBA_CHECK(parts.size() == 2 && absl::SimpleAtoi(parts[0], &p.layer) &&
                absl::SimpleAtoi(parts[1], &p.expert));
    pairs.push_back(p);
  }
  std::printf("%s: shard %s, %zu experts, %d rows per request\n",
              absl::GetFlag(FLAGS_target).c_str(), info.shard().c_str(), pairs.size(), rows);
  rpc::CompletionDriver driver(DefaultSpinMicros());
  std::shared_ptr<rpc::ExpertStream> stream =
      rpc::ExpertStream::Start(stub.get(), &driver, "bench");
  std::mt19937 rng(1);
  uint64_t tag = 0;
  std::vector<double> worker_us, transport_us;
  auto call = [&](const Pair& p) {
    std::shared_ptr<ExpertRequest> request = MakeRequest(p, rows, info.hidden_size(), wire, &rng);
    request->set_tag(++tag);
    auto sink = std::make_shared<rpc::PendingResponses>(1, &driver);
    const absl::Time start = absl::Now();
    JAMBA_CHECK(stream->Send(request, sink, 0)) << "the stream broke";
    JAMBA_CHECK(sink->WaitUntil(absl::InfiniteFuture()));
    const double round_trip = ElapsedUs(start);
    absl::StatusOr<ExpertResponse> response = sink->Take(0);
    JAMBA_CHECK(response.ok()) << response.status();
    JAMBA_CHECK(response->error_code() == 0) << response->error_message();
    worker_us.push_back(static_cast<double>(response->worker_us()));
    transport_us.push_back(round_trip - response->worker_us());
    return round_trip;
  };
  ColdAndWarm("round trip", pairs, calls, [&](const Pair& p) { return call(p); });
  // The last two cases' split: worker_us and the rest, over cold and warm.
  worker_us.erase(worker_us.begin(), worker_us.begin() + pairs.size());
  transport_us.erase(transport_us.begin(), transport_us.begin() + pairs.size());
  Report("  of which worker (cold and warm)", worker_us);
  Report("  of which transport (cold and warm)", transport_us);
  stream->Retire();
  stream->WaitDone();
  return absl::OkStatus();
}

}  // namespace
}  // namespace jamba

int main(int argc, char** argv) {
  jamba::TuneProcess();
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<jamba::DType> wire = jamba::rpc::ParseWireDType(absl::GetFlag(FLAGS_wire));
  JAMBA_CHECK(wire.ok()) << wire.status();
  const int rows = absl::GetFlag(FLAGS_rows), calls = absl::GetFlag(FLAGS_calls);
  absl::Status status;
  if (absl::GetFlag(FLAGS_sync_echo)) {
    status = jamba::RunSyncEcho(rows, calls, *wire);
  } else if (!absl::GetFlag(FLAGS_target).empty()) {
    status = jamba::RunRemote(rows, calls, *wire);
  } else {
    status = jamba::RunLocal(rows, calls, *wire);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-expert-call-bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
