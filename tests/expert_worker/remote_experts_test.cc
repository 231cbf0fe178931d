// RemoteExperts against in-process workers: bit-identical to LocalExperts,
// readiness checks, concurrency, bf16 wire, failures, timeouts, reconnects.
#include "rpc/remote_experts.h"

#include <cmath>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_tsan.h"
#include "tests/expert_worker/worker_harness.h"

namespace jamba::rpc {
namespace {

namespace pb = ::jamba::internal::v1;
using ::jamba::testing::InProcessWorker;
using ::jamba::testing::ValueOrDie;
using ::jamba::testing::WorkerHarness;
using ::testing::HasSubstr;

// A worker that reads requests and never answers.
class SilentService final : public pb::ExpertService::CallbackService {
  grpc::ServerBidiReactor<pb::ExpertRequest, pb::ExpertResponse>* Compute(
      grpc::CallbackServerContext* context) override {
    class Reactor final : public grpc::ServerBidiReactor<pb::ExpertRequest, pb::ExpertResponse> {
     public:
      Reactor() {
        GrpcOpStarts(this);
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        GrpcReaction reaction(this);
        GrpcOpStarts(this);
        if (ok) {
          StartRead(&request_);
        } else {
          Finish(grpc::Status::OK);
        }
      }
      void OnDone() override {
        GrpcReactionStarts(this);
        delete this;
      }

     private:
      pb::ExpertRequest request_;
    };
    return new Reactor();
  }
};

class RemoteExpertsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<WorkerHarness>(GetParam());
    w0_ = harness_->StartWorker("s0");
    w1_ = harness_->StartWorker("s1");
  }

  std::unique_ptr<RemoteExperts> Remote(RemoteExpertsOptions options = {}) {
    return ValueOrDie(RemoteExperts::Create(harness_->Placement(w0_->address(), w1_->address()),
                                            harness_->config().hidden_size, harness_->backend(),
                                            options));
  }

  // out = experts(x) in process, the reference.
  Tensor Local(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts) {
    Tensor out = Tensor::Zeros(DType::kF32, x.shape());
    JAMBA_CHECK(harness_->all_experts().Run(layer, x, weights, experts, &out).ok());
    return out;
  }

  std::unique_ptr<WorkerHarness> harness_;
  std::unique_ptr<InProcessWorker> w0_, w1_;
};

TEST_P(RemoteExpertsTest, BitIdenticalToLocalExperts) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  ASSERT_TRUE(remote->WaitUntilReady(absl::Seconds(10)).ok());
  std::mt19937 rng(21);
  for (int layer : harness_->moe_layers()) {
    for (int64_t T : {1, 2, 7, 33, 64}) {
      Tensor x = harness_->RandomRows(T, &rng);
      Tensor weights, experts;
      harness_->RandomRouting(T, &rng, &weights, &experts);
      const Tensor want = Local(layer, x, weights, experts);
      Tensor got = Tensor::Zeros(DType::kF32, x.shape());
      ASSERT_TRUE(remote->Run(layer, x, weights, experts, &got).ok());
      EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0)
          << "layer " << layer << " T " << T;
    }
  }
}

TEST_P(RemoteExpertsTest, RoutingToOneShardOnly) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::mt19937 rng(22);
  const int layer = harness_->moe_layers()[0];
  const int k = harness_->config().num_experts_per_tok;
  const int64_t T = 5;
  Tensor x = harness_->RandomRows(T, &rng);
  Tensor weights = Tensor::Zeros(DType::kF32, {T, k});
  Tensor experts = Tensor::Zeros(DType::kI32, {T, k});
  for (int64_t i = 0; i < T * k; ++i) {
    weights.data<float>()[i] = 0.1f * (i + 1);
    experts.data<int32_t>()[i] = static_cast<int32_t>(i % k);  // experts 0.. on s0
  }
  const Tensor want = Local(layer, x, weights, experts);
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  ASSERT_TRUE(remote->Run(layer, x, weights, experts, &got).ok());
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
  // A layer without MoE is a caller error.
  EXPECT_EQ(remote->Run(0, x, weights, experts, &got).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(RemoteExpertsTest, ConcurrentRunsShareTheStreams) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  std::vector<std::vector<Tensor>> inputs(4);
  for (int t = 0; t < 4; ++t) {
    std::mt19937 rng(100 + t);
    for (int i = 0; i < 10; ++i) {
      const int64_t T = 1 + rng() % 20;
      const int layer = harness_->moe_layers()[i % 2];
      Tensor x = harness_->RandomRows(T, &rng);
      Tensor w, e;
      harness_->RandomRouting(T, &rng, &w, &e);
      inputs[t].insert(inputs[t].end(), {x, w, e, Local(layer, x, w, e)});
    }
  }
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::vector<Tensor>& in = inputs[t];
        Tensor got = Tensor::Zeros(DType::kF32, in[4 * i].shape());
        const absl::Status s = remote->Run(harness_->moe_layers()[i % 2], in[4 * i], in[4 * i + 1],
                                           in[4 * i + 2], &got);
        if (!s.ok() || std::memcmp(got.raw_data(), in[4 * i + 3].raw_data(), got.nbytes())) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST_P(RemoteExpertsTest, Bf16WireIsClose) {
  RemoteExpertsOptions options;
  options.wire_dtype = DType::kBF16;
  std::unique_ptr<RemoteExperts> remote = Remote(options);
  std::mt19937 rng(23);
  for (int layer : harness_->moe_layers()) {
    const int64_t T = 9;
    Tensor x = harness_->RandomRows(T, &rng);
    Tensor weights, experts;
    harness_->RandomRouting(T, &rng, &weights, &experts);
    const Tensor want = Local(layer, x, weights, experts);
    Tensor got = Tensor::Zeros(DType::kF32, x.shape());
    ASSERT_TRUE(remote->Run(layer, x, weights, experts, &got).ok());
    double max_ref = 0, max_err = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      max_ref = std::max(max_ref, std::fabs(double{want.data<float>()[i]}));
      max_err = std::max(max_err, std::fabs(double{got.data<float>()[i]} - want.data<float>()[i]));
    }
    EXPECT_GT(max_err, 0.0) << "bf16 rounding should show";
    EXPECT_LT(max_err, 2e-2 * max_ref) << "layer " << layer;
  }
}

TEST_P(RemoteExpertsTest, RefusesOversizeRequestsBeforeSending) {
  RemoteExpertsOptions options;
  options.max_request_bytes = 1000;
  std::unique_ptr<RemoteExperts> remote = Remote(options);
  std::mt19937 rng(27);
  const int layer = harness_->moe_layers()[0];
  for (int64_t T : {int64_t{32}, int64_t{1}}) {
    Tensor x = harness_->RandomRows(T, &rng);
    Tensor weights, experts;
    harness_->RandomRouting(T, &rng, &weights, &experts);
    Tensor got = Tensor::Zeros(DType::kF32, x.shape());
    const absl::Status s = remote->Run(layer, x, weights, experts, &got);
    if (T > 1) {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr("over the limit of 1000"));
    } else {
      ASSERT_TRUE(s.ok()) << s;
      const Tensor want = Local(layer, x, weights, experts);
      EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
    }
  }
}

TEST_P(RemoteExpertsTest, WaitUntilReadyChecksThePlacement) {
  EXPECT_TRUE(Remote()->WaitUntilReady(absl::Seconds(10)).ok());
  // Swapped targets: each worker lacks what the placement puts there.
  auto swapped =
      ValueOrDie(RemoteExperts::Create(harness_->Placement(w1_->address(), w0_->address()),
                                       harness_->config().hidden_size, harness_->backend()));
  const absl::Status s = swapped->WaitUntilReady(absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("does not host expert"));
  // A target nobody listens on.
  const std::string dead = absl::StrCat("127.0.0.1:", w1_->port);
  w1_->server->Shutdown();
  w1_.reset();
  auto down =
      ValueOrDie(RemoteExperts::Create(harness_->Placement(w0_->address(), dead),
                                       harness_->config().hidden_size, harness_->backend()));
  const absl::Status u = down->WaitUntilReady(absl::Milliseconds(500));
  EXPECT_EQ(u.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(u.message()), HasSubstr("shard \"s1\" (target " + dead + ")"));
}

TEST_P(RemoteExpertsTest, FailsOverAndReconnectsAfterAWorkerRestart) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::mt19937 rng(24);
  const int layer = harness_->moe_layers()[0];
  const int64_t T = 16;
  Tensor x = harness_->RandomRows(T, &rng);
  Tensor weights, experts;
  harness_->RandomRouting(T, &rng, &weights, &experts);
  const Tensor want = Local(layer, x, weights, experts);
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  ASSERT_TRUE(remote->Run(layer, x, weights, experts, &got).ok());

  const int port = w1_->port;
  w1_->server->Shutdown(absl::ToChronoTime(absl::Now()));
  w1_.reset();
  const absl::Status down = remote->Run(layer, x, weights, experts, &got);
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_THAT(std::string(down.message()),
              HasSubstr(absl::StrCat("shard \"s1\" (target 127.0.0.1:", port, ")")));

  w1_ = harness_->StartWorker("s1", port);
  absl::Status status;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  do {
    got = Tensor::Zeros(DType::kF32, x.shape());
    status = remote->Run(layer, x, weights, experts, &got);
    if (!status.ok()) absl::SleepFor(absl::Milliseconds(100));
  } while (!status.ok() && absl::Now() < give_up);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
}

// An idle stream has no read in flight, so a worker's restart goes unseen
// until the next request; that request must then go out again on a new
// stream to the same (only) replica, not fail once the replica is back.
TEST_P(RemoteExpertsTest, FirstCallAfterAWorkerRestartSucceeds) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::mt19937 rng(26);
  const int layer = harness_->moe_layers()[0];
  Tensor x = harness_->RandomRows(8, &rng);
  Tensor weights, experts;
  harness_->RandomRouting(8, &rng, &weights, &experts);
  const Tensor want = Local(layer, x, weights, experts);
  for (int restart = 0; restart < 3; ++restart) {
    Tensor got = Tensor::Zeros(DType::kF32, x.shape());
    const absl::Status ran = remote->Run(layer, x, weights, experts, &got);
    ASSERT_TRUE(ran.ok()) << "restart " << restart << ": " << ran;
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
    const int port = w1_->port;
    w1_.reset();  // cancels the idle stream on the worker's side
    w1_ = harness_->StartWorker("s1", port);
    // Until the channel has reconnected (its reconnect backoff may have
    // begun while the port was closed); the Compute stream it had stays
    // idle and dead until the next Run.
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!remote->WaitUntilReady(absl::Seconds(1)).ok() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  const absl::Status status = remote->Run(layer, x, weights, experts, &got);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
}

TEST_P(RemoteExpertsTest, WorkerErrorsKeepTheirCode) {
  // s0's placement claims all of layer 1, but the worker hosts only half.
  const int layer = harness_->moe_layers()[0];
  const int E = harness_->config().num_experts;
  auto lying = ValueOrDie(ExpertPlacement::Parse(
      absl::StrCat(R"({"shards": [{"name": "s0", "targets": [")", w0_->address(),
                   R"("], "experts": "0-)", E - 1, R"("}]})"),
      harness_->config()));
  auto remote =
      ValueOrDie(RemoteExperts::Create(lying, harness_->config().hidden_size, harness_->backend()));
  std::mt19937 rng(25);
  Tensor x = harness_->RandomRows(4, &rng);
  Tensor weights, experts;
  harness_->RandomRouting(4, &rng, &weights, &experts);
  for (int64_t i = 0; i < experts.numel(); ++i) experts.data<int32_t>()[i] = E - 1 - (i % 2);
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  const absl::Status s = remote->Run(layer, x, weights, experts, &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("shard \"s0\""));
  EXPECT_THAT(std::string(s.message()), HasSubstr("is not hosted"));
}

TEST_P(RemoteExpertsTest, TimesOutOnASilentWorker) {
  SilentService silent;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&silent);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  RemoteExpertsOptions options;
  options.call_timeout = absl::Milliseconds(300);
  const std::string target = absl::StrCat("127.0.0.1:", port);
  auto remote = ValueOrDie(RemoteExperts::Create(harness_->Placement(w0_->address(), target),
                                                 harness_->config().hidden_size,
                                                 harness_->backend(), options));
  std::mt19937 rng(26);
  Tensor x = harness_->RandomRows(8, &rng);
  Tensor weights, experts;
  harness_->RandomRouting(8, &rng, &weights, &experts);
  for (int64_t i = 0; i < experts.numel(); ++i) {
    experts.data<int32_t>()[i] = harness_->config().num_experts - 1 - (i % 2);
  }
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  const absl::Time start = absl::Now();
  const absl::Status s = remote->Run(harness_->moe_layers()[0], x, weights, experts, &got);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no answer within 300ms"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("(target " + target + ")"));
  remote.reset();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RemoteExpertsTest, ::testing::Values("sharded", "gqa_h72"));

}  // namespace
}  // namespace jamba::rpc
