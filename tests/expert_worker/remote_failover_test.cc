// RemoteExperts failover and deadlines against in-process workers: a shard
// with two replicas survives losing one with bit-identical results; with
// none left a call fails at once with UNAVAILABLE; readiness needs one
// replica per shard; requests carry the time left to the caller's deadline
// and workers refuse work whose deadline passed; submitted calls overlap.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_tsan.h"
#include "rpc/remote_experts.h"
#include "rpc/tensor_codec.h"
#include "tests/expert_worker/worker_harness.h"

namespace jamba::rpc {
namespace {

namespace pb = ::jamba::internal::v1;
using ::jamba::testing::InProcessWorker;
using ::jamba::testing::ValueOrDie;
using ::jamba::testing::WorkerHarness;
using ::testing::HasSubstr;

// A worker that records each request's timeout_us and never answers.
class RecordingService final : public pb::ExpertService::CallbackService {
 public:
  std::vector<int64_t> timeouts() {
    absl::MutexLock lock(&mu_);
    return timeouts_;
  }

 private:
  grpc::ServerBidiReactor<pb::ExpertRequest, pb::ExpertResponse>* Compute(
      grpc::CallbackServerContext* context) override {
    class Reactor final : public grpc::ServerBidiReactor<pb::ExpertRequest, pb::ExpertResponse> {
     public:
      explicit Reactor(RecordingService* service) : service_(service) {
        GrpcOpStarts(this);
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        GrpcReaction reaction(this);
        if (!ok) {
          GrpcOpStarts(this);
          return Finish(grpc::Status::OK);
        }
        {
          absl::MutexLock lock(&service_->mu_);
          service_->timeouts_.push_back(request_.timeout_us());
        }
        GrpcOpStarts(this);
        StartRead(&request_);
      }
      void OnDone() override {
        GrpcReactionStarts(this);
        delete this;
      }

     private:
      RecordingService* service_;
      pb::ExpertRequest request_;
    };
    return new Reactor(this);
  }

  absl::Mutex mu_;
  std::vector<int64_t> timeouts_ ABSL_GUARDED_BY(mu_);
};

class RemoteFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<WorkerHarness>("sharded");
    w0_ = harness_->StartWorker("s0");
    a_ = harness_->StartWorker("s1");
    b_ = harness_->StartWorker("s1");
  }

  // s0 on w0_; s1 on the replicas a_ and b_ (two targets in the JSON list).
  std::unique_ptr<RemoteExperts> Remote(RemoteExpertsOptions options = {}) {
    const std::string s1 = absl::StrCat(a_->address(), R"(", ")", b_->address());
    return ValueOrDie(RemoteExperts::Create(harness_->Placement(w0_->address(), s1),
                                            harness_->config().hidden_size, harness_->backend(),
                                            options));
  }

  // Random rows routed so that both shards get some.
  void Inputs(int64_t T, std::mt19937* rng, Tensor* x, Tensor* weights, Tensor* experts) {
    *x = harness_->RandomRows(T, rng);
    harness_->RandomRouting(T, rng, weights, experts);
    // Row 0 goes to expert E-2 (or E-3), on s1 in every MoE layer.
    const int E = harness_->config().num_experts;
    int32_t* e = experts->data<int32_t>();
    e[0] = e[1] == E - 2 ? E - 3 : E - 2;
  }

  Tensor Local(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts) {
    Tensor out = Tensor::Zeros(DType::kF32, x.shape());
    JAMBA_CHECK(harness_->all_experts().Run(layer, x, weights, experts, &out).ok());
    return out;
  }

  static void Kill(std::unique_ptr<InProcessWorker>& w) {
    w->server->Shutdown(absl::ToChronoTime(absl::Now()));
    w.reset();
  }

  std::unique_ptr<WorkerHarness> harness_;
  std::unique_ptr<InProcessWorker> w0_, a_, b_;
};

TEST_F(RemoteFailoverTest, LosingOneReplicaLosesNoCall) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  const int layer = harness_->moe_layers()[0];
  std::mt19937 rng(31);
  std::vector<std::vector<Tensor>> cases;  // x, weights, experts, want
  for (int i = 0; i < 60; ++i) {
    Tensor x, w, e;
    Inputs(1 + i % 9, &rng, &x, &w, &e);
    cases.push_back({x, w, e, Local(layer, x, w, e)});
  }
  std::atomic<int> done{0}, failed{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 60; i += 3) {
        const std::vector<Tensor>& c = cases[i];
        Tensor got = Tensor::Zeros(DType::kF32, c[0].shape());
        const absl::Status s = remote->Run(layer, c[0], c[1], c[2], &got);
        if (!s.ok()) {
          ++failed;
          ADD_FAILURE() << s;
        } else if (std::memcmp(got.raw_data(), c[3].raw_data(), got.nbytes()) != 0) {
          ++wrong;
        }
        ++done;
      }
    });
  }
  while (done.load() < 15) absl::SleepFor(absl::Milliseconds(1));
  Kill(a_);  // mid-run: calls on its stream break and go to b_
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(remote->WaitUntilReady(absl::Milliseconds(500)).ok());
}

TEST_F(RemoteFailoverTest, NoReplicaLeftIsUnavailableAtOnce) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::mt19937 rng(32);
  Tensor x, w, e;
  Inputs(6, &rng, &x, &w, &e);
  const int layer = harness_->moe_layers()[0];
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  const absl::Status first = remote->Run(layer, x, w, e, &got);
  ASSERT_TRUE(first.ok()) << first;
  Kill(a_);
  Kill(b_);
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    const absl::Status s = remote->Run(layer, x, w, e, &got);
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("no other replica of shard \"s1\""));
  }
  const absl::Status ready = remote->WaitUntilReady(absl::Milliseconds(300));
  EXPECT_EQ(ready.code(), absl::StatusCode::kUnavailable) << ready;
  EXPECT_THAT(std::string(ready.message()), HasSubstr("shard \"s1\""));
}

TEST_F(RemoteFailoverTest, ReadyWithOneAnsweringReplicaPerShard) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  ASSERT_TRUE(remote->WaitUntilReady(absl::Seconds(10)).ok());
  Kill(b_);
  EXPECT_TRUE(remote->WaitUntilReady(absl::Milliseconds(300)).ok());
  Kill(a_);
  EXPECT_FALSE(remote->WaitUntilReady(absl::Milliseconds(300)).ok());
}

TEST_F(RemoteFailoverTest, RequestsCarryTheTimeLeftToTheDeadline) {
  RecordingService recording;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&recording);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  RemoteExpertsOptions options;
  options.call_timeout = absl::Seconds(20);
  auto remote = ValueOrDie(
      RemoteExperts::Create(harness_->Placement(w0_->address(), absl::StrCat("127.0.0.1:", port)),
                            harness_->config().hidden_size, harness_->backend(), options));
  std::mt19937 rng(33);
  Tensor x, w, e;
  Inputs(4, &rng, &x, &w, &e);
  Tensor got = Tensor::Zeros(DType::kF32, x.shape());
  remote->set_deadline(absl::Now() + absl::Milliseconds(300));
  const absl::Status s = remote->Run(harness_->moe_layers()[0], x, w, e, &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  // Without a deadline the call timeout bounds the request.
  auto quick = ValueOrDie(
      RemoteExperts::Create(harness_->Placement(w0_->address(), absl::StrCat("127.0.0.1:", port)),
                            harness_->config().hidden_size, harness_->backend(), [] {
                              RemoteExpertsOptions o;
                              o.call_timeout = absl::Milliseconds(200);
                              return o;
                            }()));
  EXPECT_EQ(quick->Run(harness_->moe_layers()[0], x, w, e, &got).code(),
            absl::StatusCode::kUnavailable);
  const std::vector<int64_t> timeouts = recording.timeouts();
  ASSERT_EQ(timeouts.size(), 2u);
  EXPECT_GT(timeouts[0], 100'000);
  EXPECT_LE(timeouts[0], 300'000);
  EXPECT_GT(timeouts[1], 0);
  EXPECT_LE(timeouts[1], 200'000);
  remote.reset();
  quick.reset();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

TEST_F(RemoteFailoverTest, WorkerRefusesWorkWhoseDeadlinePassed) {
  std::mt19937 rng(34);
  Tensor x = harness_->RandomRows(3, &rng);
  pb::ExpertRequest request;
  request.set_tag(7);
  request.set_layer(harness_->moe_layers()[0]);
  pb::ExpertRows* rows = request.add_groups();
  rows->set_expert(0);
  EncodeRows(x, {0, 1, 2}, DType::kF32, rows->mutable_x());
  request.set_timeout_us(1'000);
  const pb::ExpertResponse late = w0_->service->Handle(request, absl::Now() - absl::Seconds(1));
  EXPECT_EQ(late.tag(), 7u);
  EXPECT_EQ(late.error_code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(late.error_message(), HasSubstr("deadline"));
  EXPECT_EQ(late.outputs_size(), 0);
  request.set_timeout_us(10'000'000);
  const pb::ExpertResponse in_time = w0_->service->Handle(request, absl::Now());
  EXPECT_EQ(in_time.error_code(), 0) << in_time.error_message();
  EXPECT_EQ(in_time.outputs_size(), 1);
  EXPECT_GE(in_time.worker_us(), 0);
}

TEST_F(RemoteFailoverTest, SubmittedCallsOverlapAndFinishInAnyOrder) {
  std::unique_ptr<RemoteExperts> remote = Remote();
  std::mt19937 rng(35);
  Tensor x1, w1, e1, x2, w2, e2;
  Inputs(5, &rng, &x1, &w1, &e1);
  Inputs(9, &rng, &x2, &w2, &e2);
  const int l1 = harness_->moe_layers()[0], l2 = harness_->moe_layers()[1];
  const Tensor want1 = Local(l1, x1, w1, e1), want2 = Local(l2, x2, w2, e2);
  Tensor got1 = Tensor::Zeros(DType::kF32, x1.shape());
  Tensor got2 = Tensor::Zeros(DType::kF32, x2.shape());
  auto call1 = remote->Submit(l1, x1, w1, e1, &got1);
  auto call2 = remote->Submit(l2, x2, w2, e2, &got2);
  const absl::Status s2 = call2->Wait();
  ASSERT_TRUE(s2.ok()) << s2;
  const absl::Status s1 = call1->Wait();
  ASSERT_TRUE(s1.ok()) << s1;
  EXPECT_EQ(std::memcmp(got1.raw_data(), want1.raw_data(), want1.nbytes()), 0);
  EXPECT_EQ(std::memcmp(got2.raw_data(), want2.raw_data(), want2.nbytes()), 0);
  // A call dropped without Wait leaves the others alone.
  remote->Submit(l1, x1, w1, e1, &got1).reset();
  Tensor again = Tensor::Zeros(DType::kF32, x2.shape());
  ASSERT_TRUE(remote->Run(l2, x2, w2, e2, &again).ok());
  EXPECT_EQ(std::memcmp(again.raw_data(), want2.raw_data(), want2.nbytes()), 0);
}

}  // namespace
}  // namespace jamba::rpc
