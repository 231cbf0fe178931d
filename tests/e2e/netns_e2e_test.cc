// Multi-host end to end on one machine: network namespaces as hosts (see
// NetnsLab). The router runs in one, shard-0 in another, and shard-1's
// replicas each in their own. The router names each shard by a DNS name
// (dns:///shard-N.jamba.test:7000) that its namespace's /etc/hosts resolves
// to the shard's replicas, as a Kubernetes headless Service resolves to its
// ready pods; adding a replica is adding its address to the name.
//
// Skips, saying why, where namespaces cannot be made (not root, no `ip`).
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "jamba/internal/v1/expert.grpc.pb.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/e2e/netns_lab.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/subprocess.h"

namespace jamba {
namespace {

constexpr int kRouterHost = 0;
constexpr int kShard0Host = 1;
constexpr int kFirstShard1Host = 2;  // shard-1 replicas on hosts 2, 3, 4
constexpr char kShard0[] = "shard-0.jamba.test";
constexpr char kShard1[] = "shard-1.jamba.test";

class NetnsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = testing::NetnsLab::Unsupported(); !why.empty()) {
      GTEST_SKIP() << "multi-host test skipped: " << why;
    }
    const absl::Status created = lab_.Create(5);
    if (absl::IsUnavailable(created)) GTEST_SKIP() << "multi-host test skipped: " << created;
    ASSERT_TRUE(created.ok()) << created;
    tiny_ = testing::SourceDir() + "/tests/testdata/tiny_model";
    ASSERT_TRUE(StartWorker(kShard0Host, "0,2,4,6").ok());
    for (int host : {kFirstShard1Host, kFirstShard1Host + 1}) {
      ASSERT_TRUE(StartWorker(host, "1,3,5,7").ok());
    }
    shard1_ = {lab_.ip(kFirstShard1Host), lab_.ip(kFirstShard1Host + 1)};
    ASSERT_TRUE(PublishHosts().ok());
    // The native resolver reads the namespace's /etc/hosts (in Kubernetes,
    // cluster DNS answers instead).
    std::vector<std::string> argv = lab_.Exec(kRouterHost);
    argv.insert(argv.end(), {"/usr/bin/env", "GRPC_DNS_RESOLVER=native",
                             testing::BinaryDir() + "/router/jamba-router", "--model", tiny_,
                             "--host", lab_.ip(kRouterHost), "--port", "50051", "--experts",
                             absl::StrCat("dns:///", kShard0, ":7000,dns:///", kShard1, ":7000")});
    ASSERT_TRUE(router_.Start(argv).ok());
    absl::StatusOr<std::string> address = router_.WaitForAddress();
    ASSERT_TRUE(address.ok()) << address.status() << router_.log();
    router_address_ = *address;
    // This test's own gRPC calls go out from the router's host.
    ASSERT_TRUE(lab_.Enter(kRouterHost).ok());
    const absl::Status serving =
        testing::WaitHealthServing(router_address_, "jamba.v1.JambaService", absl::Seconds(60));
    ASSERT_TRUE(serving.ok()) << serving << router_.log();
  }

  void TearDown() override {
    StopLoad();
    router_.Stop();
    for (auto& [host, worker] : workers_) worker->Stop();
  }

  // Starts an expert worker on `host` hosting `experts` of every MoE layer.
  absl::Status StartWorker(int host, const std::string& experts) {
    std::vector<std::string> argv = lab_.Exec(host);
    argv.insert(argv.end(), {testing::BinaryDir() + "/expert_worker/jamba-expert-worker", "--model",
                             tiny_, "--host", lab_.ip(host), "--port", "7000", "--experts", experts,
                             // Short, so that the router re-resolves names soon.
                             "--max_connection_age", "2s"});
    auto worker = std::make_unique<testing::Subprocess>();
    RETURN_IF_ERROR(worker->Start(argv));
    absl::StatusOr<std::string> address = worker->WaitForAddress();
    if (!address.ok()) {
      return absl::InternalError(absl::StrCat(address.status().ToString(), worker->log()));
    }
    workers_[host] = std::move(worker);
    return absl::OkStatus();
  }

  absl::Status PublishHosts() {
    return lab_.WriteHosts(kRouterHost, {{kShard0, {lab_.ip(kShard0Host)}}, {kShard1, shard1_}});
  }

  // Compute requests a worker has answered.
  uint64_t Answered(int host) {
    auto stub = jamba::internal::v1::ExpertService::NewStub(grpc::CreateChannel(
        absl::StrCat(lab_.ip(host), ":7000"), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    jamba::internal::v1::ShardInfoResponse info;
    return stub->GetShardInfo(&context, {}, &info).ok() ? info.requests_answered() : 0;
  }

  // Waits until `host` has answered more than `floor` requests.
  bool WaitForTraffic(int host, uint64_t floor, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Answered(host) > floor) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  static jamba::v1::GenerateRequest Greedy() {
    jamba::v1::GenerateRequest request;
    request.set_text("The little robot walked into the garden and");
    request.mutable_sampling()->set_temperature(0);
    request.mutable_sampling()->set_max_new_tokens(24);
    request.mutable_sampling()->set_ignore_eos(true);
    return request;
  }

  std::vector<int32_t> Generate(grpc::Status* status) {
    auto stub = jamba::v1::JambaService::NewStub(
        grpc::CreateChannel(router_address_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    jamba::v1::GenerateResponse response;
    *status = stub->Generate(&context, Greedy(), &response);
    return {response.token_ids().begin(), response.token_ids().end()};
  }

  // Two clients generating back to back until StopLoad; every answer is
  // checked against `expected`.
  void StartLoad(std::vector<int32_t> expected) {
    for (int c = 0; c < 2; ++c) {
      load_.emplace_back([this, expected] {
        while (!stop_.load()) {
          grpc::Status status;
          const std::vector<int32_t> ids = Generate(&status);
          absl::MutexLock lock(&mu_);
          ++requests_;
          if (!status.ok()) {
            failures_.push_back(absl::StrCat(status.error_code(), ": ", status.error_message()));
          } else if (ids != expected) {
            failures_.push_back("output differs from the first generation");
          }
        }
      });
    }
  }
  void StopLoad() {
    stop_ = true;
    for (auto& thread : load_) thread.join();
    load_.clear();
  }

  testing::NetnsLab lab_;
  std::string tiny_;
  std::map<int, std::unique_ptr<testing::Subprocess>> workers_;
  std::vector<std::string> shard1_;  // the addresses shard-1's name resolves to
  testing::Subprocess router_;
  std::string router_address_;

  std::vector<std::thread> load_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
};

TEST_F(NetnsE2ETest, GenerationAcrossHostsAndANewReplicaJoinsWithoutRestart) {
  grpc::Status status;
  const std::vector<int32_t> expected = Generate(&status);
  ASSERT_TRUE(status.ok()) << status.error_message() << router_.log();
  ASSERT_EQ(expected.size(), 24u);
  StartLoad(expected);
  // Both replicas of shard-1 take part (the router rotates its streams).
  EXPECT_TRUE(WaitForTraffic(kFirstShard1Host, 0, absl::Seconds(30)));
  EXPECT_TRUE(WaitForTraffic(kFirstShard1Host + 1, 0, absl::Seconds(30)));
  EXPECT_TRUE(WaitForTraffic(kShard0Host, 0, absl::Seconds(30)));

  // A third replica starts and joins the name, as a new pod joins a
  // headless Service once ready. The router is neither restarted nor told.
  const int third = kFirstShard1Host + 2;
  ASSERT_TRUE(StartWorker(third, "1,3,5,7").ok());
  shard1_.push_back(lab_.ip(third));
  ASSERT_TRUE(PublishHosts().ok());
  // Found at the next re-resolution: after a connection ages out (2 s here)
  // and at most 30 s after the previous resolution (gRPC's minimum).
  EXPECT_TRUE(WaitForTraffic(third, 0, absl::Seconds(60))) << "the third replica got no traffic\n"
                                                           << router_.log();
  EXPECT_TRUE(router_.running());
  StopLoad();
  absl::MutexLock lock(&mu_);
  EXPECT_GT(requests_, 0);
  EXPECT_TRUE(failures_.empty()) << failures_.size() << " failed, first: " << failures_[0];
}

TEST_F(NetnsE2ETest, AReplicaKilledMidRunFailsNoRequest) {
  grpc::Status status;
  const std::vector<int32_t> expected = Generate(&status);
  ASSERT_TRUE(status.ok()) << status.error_message() << router_.log();
  StartLoad(expected);
  const int victim = kFirstShard1Host, survivor = kFirstShard1Host + 1;
  ASSERT_TRUE(WaitForTraffic(victim, 0, absl::Seconds(30)));
  EXPECT_EQ(workers_[victim]->Stop(SIGKILL), 128 + SIGKILL);
  // The dead pod leaves the name, as Kubernetes drops it from the endpoints.
  shard1_ = {lab_.ip(survivor)};
  ASSERT_TRUE(PublishHosts().ok());
  const uint64_t before = Answered(survivor);
  absl::SleepFor(absl::Seconds(5));
  EXPECT_TRUE(WaitForTraffic(survivor, before, absl::Seconds(30)));
  StopLoad();
  absl::MutexLock lock(&mu_);
  EXPECT_GT(requests_, 0);
  EXPECT_TRUE(failures_.empty()) << failures_.size() << " failed, first: " << failures_[0];
}

}  // namespace
}  // namespace jamba
