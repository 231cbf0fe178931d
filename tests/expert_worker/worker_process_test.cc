// The real jamba-expert-worker binary: the "listening on" line, health,
// serving a placement shard, SIGTERM -> exit 0, bad flags -> exit 1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "rpc/remote_experts.h"
#include "tests/expert_worker/worker_harness.h"

namespace jamba::expert {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::jamba::testing::ValueOrDie;
using ::jamba::testing::WorkerHarness;
using ::testing::HasSubstr;

constexpr char kListening[] = "jamba-expert-worker listening on ";

// A child process running the worker binary; stdout is a pipe, stderr a file.
class WorkerProcess {
 public:
  explicit WorkerProcess(std::vector<std::string> flags) {
    stderr_path_ = ::testing::TempDir() + "/worker_stderr_" + std::to_string(getpid()) + "_" +
                   std::to_string(counter_++);
    std::vector<std::string> args = {JAMBA_EXPERT_WORKER_PATH};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    JAMBA_CHECK(pipe(out) == 0);
    const int err = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    JAMBA_CHECK(err >= 0);
    pid_ = fork();
    JAMBA_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      // Only stdin, stdout and stderr survive into the worker.
      close_range(3, ~0u, 0);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err);
    out_ = out[0];
  }

  ~WorkerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }

  // The next stdout line, or "" at EOF or after `timeout`.
  std::string ReadLine(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string line;
    while (absl::Now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char c;
      if (read(out_, &c, 1) != 1) return line;
      if (c == '\n') return line;
      line += c;
    }
    return "";
  }

  // The address from the "listening on" line.
  std::string WaitForAddress() {
    const std::string line = ReadLine(absl::Seconds(60));
    if (!absl::StartsWith(line, kListening)) return "";
    return line.substr(std::strlen(kListening));
  }

  // Sends `signal` (none if 0) and returns the exit code, or -1 if the
  // process did not end within `timeout` (it is killed then).
  int Stop(int signal, absl::Duration timeout) {
    if (signal != 0) kill(pid_, signal);
    const absl::Time deadline = absl::Now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > deadline) return -1;
      absl::SleepFor(absl::Milliseconds(10));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string Stderr() const {
    std::ifstream in(stderr_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  int out_ = -1;
  std::string stderr_path_;
};

std::string Fixture(const std::string& name) { return "tests/testdata/fixtures/" + name; }

HealthCheckResponse::ServingStatus Check(const std::string& address, const std::string& service) {
  auto stub = Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(WorkerProcessTest, ServesHealthAndExitsZeroOnSigterm) {
  WorkerProcess worker({"--model", Fixture("sharded"), "--experts", "all", "--port", "0"});
  const std::string address = worker.WaitForAddress();
  ASSERT_FALSE(address.empty()) << worker.Stderr();
  EXPECT_THAT(address, ::testing::StartsWith("127.0.0.1:"));
  EXPECT_NE(address, "127.0.0.1:0");
  EXPECT_EQ(Check(address, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(address, "jamba.internal.v1.ExpertService"), HealthCheckResponse::SERVING);

  auto stub = ::jamba::internal::v1::ExpertService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  ::jamba::internal::v1::ShardInfoResponse info;
  ASSERT_TRUE(stub->GetShardInfo(&context, ::jamba::internal::v1::ShardInfoRequest(), &info).ok());
  EXPECT_EQ(info.experts_size(),
            4 * 8);  // MoE layers 1, 3, 5, 7 with 8 experts
  EXPECT_EQ(worker.ReadLine(absl::Milliseconds(200)), "") << "stdout has one line only";

  EXPECT_EQ(worker.Stop(SIGTERM, absl::Seconds(20)), 0) << worker.Stderr();
  EXPECT_THAT(worker.Stderr(), HasSubstr("loading experts"));
}

TEST(WorkerProcessTest, TwoWorkersServeAPlacementBitIdentically) {
  WorkerHarness harness("sharded");
  const std::string path = ::testing::TempDir() + "/placement_" + std::to_string(getpid());
  {
    std::ofstream out(path);
    out << harness.PlacementJson("unused:1", "unused:2");
  }
  WorkerProcess w0({"--model", Fixture("sharded"), "--placement", path, "--shard", "s0",
                    "--drain_timeout", "60s"});
  WorkerProcess w1({"--model", Fixture("sharded"), "--placement", path, "--shard", "s1",
                    "--drain_timeout", "60s"});
  const std::string a0 = w0.WaitForAddress(), a1 = w1.WaitForAddress();
  ASSERT_FALSE(a0.empty()) << w0.Stderr();
  ASSERT_FALSE(a1.empty()) << w1.Stderr();

  auto remote = ValueOrDie(rpc::RemoteExperts::Create(
      harness.Placement(a0, a1), harness.config().hidden_size, harness.backend()));
  ASSERT_TRUE(remote->WaitUntilReady(absl::Seconds(10)).ok());
  std::mt19937 rng(31);
  for (int layer : harness.moe_layers()) {
    Tensor x = harness.RandomRows(12, &rng);
    Tensor weights, experts;
    harness.RandomRouting(12, &rng, &weights, &experts);
    Tensor want = Tensor::Zeros(DType::kF32, x.shape());
    ASSERT_TRUE(harness.all_experts().Run(layer, x, weights, experts, &want).ok());
    Tensor got = Tensor::Zeros(DType::kF32, x.shape());
    ASSERT_TRUE(remote->Run(layer, x, weights, experts, &got).ok());
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
  }
  // Open streams drain at once, well inside the 60 s drain timeout.
  EXPECT_EQ(w0.Stop(SIGTERM, absl::Seconds(10)), 0) << w0.Stderr();
  EXPECT_EQ(w1.Stop(SIGINT, absl::Seconds(10)), 0) << w1.Stderr();
}

TEST(WorkerProcessTest, BadFlagsAndCheckpointsExitNonZeroWithOneLine) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--model", Fixture("sharded"), "--experts", "0-99"}, "--experts"},
      {{"--model", Fixture("sharded")}, "--experts or --placement"},
      {{"--experts", "0-3"}, "--model"},
      {{"--model", "/nonexistent/dir", "--experts", "0-3"}, "/nonexistent/dir"},
      {{"--model", Fixture("sharded"), "--experts", "0", "--backend", "tpu"}, "--backend"},
      {{"--model", Fixture("sharded"), "--placement", "/nonexistent.json", "--shard", "s0"},
       "/nonexistent.json"},
      {{"--model", Fixture("sharded"), "--experts", "0", "--port", "70000"}, "--port"},
  };
  for (const auto& [flags, needle] : cases) {
    WorkerProcess worker(flags);
    EXPECT_EQ(worker.Stop(0, absl::Seconds(30)), 1) << needle;
    const std::string err = worker.Stderr();
    EXPECT_THAT(err, HasSubstr(needle));
    std::vector<std::string> lines = absl::StrSplit(err, '\n', absl::SkipEmpty());
    EXPECT_EQ(lines.size(), 1u) << err;
  }
}

}  // namespace
}  // namespace jamba::expert
