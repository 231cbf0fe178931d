// End to end: a cluster with mutual TLS between the router and 2 expert
// workers, TLS and a bearer token on the public API, plaintext health
// ports; a router -> mixer worker -> expert workers chain under mutual
// TLS; and a separate worker whose certificate files are rotated while it
// runs. Certificates are made at run time by make_test_certs.sh.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "security/tls_credentials.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/subprocess.h"

namespace jamba {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testing::BinaryDir;
using testing::Subprocess;

constexpr char kRouterService[] = "jamba.v1.JambaService";
constexpr char kExpertService[] = "jamba.internal.v1.ExpertService";
constexpr char kMixerService[] = "jamba.internal.v1.MixerService";
// A router prints its "listening on" line only after waiting up to 60 s
// for its experts or mixer workers (router_server.cc); waiting longer
// than that for the line means a slow readiness check shows as
// NOT_SERVING, which only the tests that need readiness wait out, instead
// of failing every test's setup.
constexpr absl::Duration kRouterStartTimeout = absl::Seconds(120);
// Deadline of one health or GetModelInfo call: ample for a first TLS
// handshake on a loaded machine. What the tests check is the status code;
// refusals (UNAVAILABLE, UNAUTHENTICATED) come back at once.
constexpr absl::Duration kCallDeadline = absl::Seconds(30);

struct Shared {
  std::string certs;  // folder of make_test_certs.sh output
  std::string token;
  std::vector<std::unique_ptr<Subprocess>> workers;
  std::vector<std::string> worker_addresses, worker_health;
  Subprocess router;
  std::string router_address, router_health;
  absl::Status setup;
};
Shared* shared = nullptr;

std::string Cert(const std::string& name) { return shared->certs + "/" + name; }

// "HOST:PORT" from the "<binary> health on HOST:PORT" line of a log.
absl::StatusOr<std::string> HealthAddress(const Subprocess& process) {
  const std::string log = process.log();
  const size_t at = log.find(" health on ");
  if (at == std::string::npos) return absl::NotFoundError("no 'health on' line: " + log);
  const size_t start = at + 11;
  return log.substr(start, log.find_first_of(" \n", start) - start);
}

// Flags of a worker serving mutual TLS with the certificates in `dir`,
// checked every second.
std::vector<std::string> WorkerTlsFlags(const std::string& dir) {
  return {"--port",
          "0",
          "--health_port",
          "0",
          "--tls_reload_s",
          "1",
          "--internal_tls_cert",
          dir + "/server.pem",
          "--internal_tls_key",
          dir + "/server.key",
          "--internal_tls_ca",
          dir + "/ca.pem"};
}

std::vector<std::string> WorkerArgv(const std::string& experts, const std::string& dir) {
  std::vector<std::string> argv = {BinaryDir() + "/expert_worker/jamba-expert-worker", "--model",
                                   testing::SourceDir() + "/tests/testdata/tiny_model", "--experts",
                                   experts};
  for (std::string& flag : WorkerTlsFlags(dir)) argv.push_back(std::move(flag));
  return argv;
}

// A router with mutual TLS towards its workers (`backends`: --experts or
// --mixers and targets), TLS and the bearer token on its public port, and
// a plaintext health port.
std::vector<std::string> RouterArgv(const std::vector<std::string>& backends) {
  std::vector<std::string> argv = {BinaryDir() + "/router/jamba-router",
                                   "--model",
                                   testing::SourceDir() + "/tests/testdata/tiny_model",
                                   "--port",
                                   "0",
                                   "--health_port",
                                   "0",
                                   "--internal_tls_cert",
                                   Cert("client.pem"),
                                   "--internal_tls_key",
                                   Cert("client.key"),
                                   "--internal_tls_ca",
                                   Cert("ca.pem"),
                                   "--tls_cert",
                                   Cert("server.pem"),
                                   "--tls_key",
                                   Cert("server.key"),
                                   "--auth_token_file",
                                   Cert("token")};
  argv.insert(argv.end(), backends.begin(), backends.end());
  return argv;
}

absl::Status StartCluster() {
  shared->certs = absl::StrCat(::testing::TempDir(), "/jamba_certs_", getpid());
  const std::string command =
      absl::StrCat("bash ", testing::SourceDir(), "/tests/e2e/make_test_certs.sh ", shared->certs);
  if (std::system(command.c_str()) != 0) return absl::InternalError("cannot make certificates");
  std::ifstream(Cert("token")) >> shared->token;
  for (const char* experts : {"0,2,4,6", "1,3,5,7"}) {
    auto worker = std::make_unique<Subprocess>();
    RETURN_IF_ERROR(worker->Start(WorkerArgv(experts, shared->certs)));
    ASSIGN_OR_RETURN(std::string address, worker->WaitForAddress());
    ASSIGN_OR_RETURN(std::string health, HealthAddress(*worker));
    shared->worker_addresses.push_back(address);
    shared->worker_health.push_back(health);
    shared->workers.push_back(std::move(worker));
  }
  RETURN_IF_ERROR(shared->router.Start(
      RouterArgv({"--experts", shared->worker_addresses[0] + "," + shared->worker_addresses[1]})));
  ASSIGN_OR_RETURN(shared->router_address, shared->router.WaitForAddress(kRouterStartTimeout));
  ASSIGN_OR_RETURN(shared->router_health, HealthAddress(shared->router));
  return absl::OkStatus();
}

// Channel arguments that no other channel has, so that every channel makes
// its own connection (and handshake).
grpc::ChannelArguments UniqueArgs() {
  static int counter = 0;
  grpc::ChannelArguments args;
  args.SetInt("jamba.test.channel", ++counter);
  return args;
}

// A TLS channel trusting `ca`, presenting `client` (a name in the certs
// folder, "" for none).
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& ca,
                                          const std::string& client) {
  security::TlsFiles files;
  files.ca = Cert(ca);
  if (!client.empty()) {
    files.cert = Cert(client + ".pem");
    files.key = Cert(client + ".key");
  }
  auto credentials = security::TlsChannelCredentials(files, "test");
  EXPECT_TRUE(credentials.ok()) << credentials.status();
  return grpc::CreateCustomChannel(address, *credentials, UniqueArgs());
}

std::shared_ptr<grpc::Channel> PlainChannel(const std::string& address) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), UniqueArgs());
}

// Health Check of `service` over `channel`; the status, and the serving
// state in *serving.
grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         bool* serving = nullptr, std::string* peer_cn = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = Health::NewStub(channel)->Check(&context, request, &response);
  if (serving != nullptr) *serving = response.status() == HealthCheckResponse::SERVING;
  if (peer_cn != nullptr && context.auth_context() != nullptr) {
    auto names = context.auth_context()->FindPropertyValues("x509_common_name");
    *peer_cn = names.empty() ? "" : std::string(names[0].data(), names[0].size());
  }
  return status;
}

// GetModelInfo on the router with an "authorization" value ("" for none).
grpc::Status ModelInfo(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& authorization) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  jamba::v1::ModelInfo info;
  return jamba::v1::JambaService::NewStub(channel)->GetModelInfo(&context, {}, &info);
}

// Polls `service`'s health over `channel` until SERVING (false after 60 s).
bool WaitServing(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  bool serving = false;
  while (!(CheckHealth(channel, service, &serving).ok() && serving) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  return serving;
}

// 6 greedy tokens after a fixed prompt, with the bearer token.
absl::StatusOr<std::vector<int>> Generate(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  context.AddMetadata("authorization", "Bearer " + shared->token);
  jamba::v1::GenerateRequest request;
  for (int id : {1, 17, 42, 99}) request.mutable_token_ids()->add_ids(id);
  request.mutable_sampling()->set_max_new_tokens(6);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_ignore_eos(true);
  jamba::v1::GenerateResponse response;
  grpc::Status status =
      jamba::v1::JambaService::NewStub(channel)->Generate(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return std::vector<int>(response.token_ids().begin(), response.token_ids().end());
}

class SecurityE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared();
    shared->setup = StartCluster();
  }
  static void TearDownTestSuite() {
    shared->router.Stop();
    for (auto& worker : shared->workers) worker->Stop();
    std::filesystem::remove_all(shared->certs);
    delete shared;
    shared = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(shared->setup.ok()) << shared->setup; }
};

TEST_F(SecurityE2ETest, MutualTlsClusterGenerates) {
  auto channel = TlsChannel(shared->router_address, "ca.pem", "");
  // The router reports ready only once it reached both workers over mTLS.
  ASSERT_TRUE(WaitServing(channel, kRouterService)) << shared->router.log();
  absl::StatusOr<std::vector<int>> ids = Generate(channel);
  ASSERT_TRUE(ids.ok()) << ids.status() << "\n" << shared->router.log();
  EXPECT_EQ(ids->size(), 6);
}

TEST_F(SecurityE2ETest, MixerWorkerChainUnderMutualTlsGenerates) {
  // router -> mixer worker -> the 2 expert workers, every hop mutual TLS.
  Subprocess mixer;
  std::vector<std::string> mixer_argv = {
      BinaryDir() + "/mixer_worker/jamba-mixer-worker", "--model",
      testing::SourceDir() + "/tests/testdata/tiny_model", "--experts",
      shared->worker_addresses[0] + "," + shared->worker_addresses[1]};
  for (std::string& flag : WorkerTlsFlags(shared->certs)) mixer_argv.push_back(std::move(flag));
  ASSERT_TRUE(mixer.Start(mixer_argv).ok());
  absl::StatusOr<std::string> mixer_address = mixer.WaitForAddress();
  ASSERT_TRUE(mixer_address.ok()) << mixer_address.status();
  absl::StatusOr<std::string> mixer_health = HealthAddress(mixer);
  ASSERT_TRUE(mixer_health.ok()) << mixer_health.status();
  Subprocess router;
  ASSERT_TRUE(router.Start(RouterArgv({"--mixers", *mixer_address})).ok());
  absl::StatusOr<std::string> router_address = router.WaitForAddress(kRouterStartTimeout);
  ASSERT_TRUE(router_address.ok()) << router_address.status();

  // The mixer worker is ready only once it reached both expert workers,
  // the router only once it reached the mixer worker.
  EXPECT_TRUE(WaitServing(TlsChannel(*mixer_address, "ca.pem", "client"), kMixerService))
      << mixer.log();
  EXPECT_TRUE(WaitServing(PlainChannel(*mixer_health), kMixerService)) << mixer.log();
  auto channel = TlsChannel(*router_address, "ca.pem", "");
  ASSERT_TRUE(WaitServing(channel, kRouterService)) << router.log() << mixer.log();
  absl::StatusOr<std::vector<int>> through_mixer = Generate(channel);
  ASSERT_TRUE(through_mixer.ok()) << through_mixer.status() << "\n" << router.log() << mixer.log();
  // The same tokens as the router that runs the mixer itself.
  auto reference_channel = TlsChannel(shared->router_address, "ca.pem", "");
  ASSERT_TRUE(WaitServing(reference_channel, kRouterService)) << shared->router.log();
  absl::StatusOr<std::vector<int>> reference = Generate(reference_channel);
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_EQ(*through_mixer, *reference);

  // Clients without a certificate from the cluster CA are refused.
  EXPECT_EQ(CheckHealth(TlsChannel(*mixer_address, "ca.pem", ""), kMixerService).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(
      CheckHealth(TlsChannel(*mixer_address, "ca.pem", "other-client"), kMixerService).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CheckHealth(PlainChannel(*mixer_address), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(router.Stop(), 0) << router.log();
  EXPECT_EQ(mixer.Stop(), 0) << mixer.log();
}

TEST_F(SecurityE2ETest, WorkerAcceptsOnlyClientsWithCertificateFromItsCa) {
  for (const std::string& address : shared->worker_addresses) {
    bool serving = false;
    EXPECT_TRUE(
        CheckHealth(TlsChannel(address, "ca.pem", "client"), kExpertService, &serving).ok());
    EXPECT_TRUE(serving);
    EXPECT_EQ(CheckHealth(TlsChannel(address, "ca.pem", ""), kExpertService).error_code(),
              grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(
        CheckHealth(TlsChannel(address, "ca.pem", "other-client"), kExpertService).error_code(),
        grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_F(SecurityE2ETest, ClientVerifiesTheServerCertificate) {
  // A client that trusts only another CA refuses the router's certificate.
  EXPECT_EQ(CheckHealth(TlsChannel(shared->router_address, "other-ca.pem", ""), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityE2ETest, PlaintextClientRefusedOnTlsPorts) {
  for (const std::string& address :
       {shared->router_address, shared->worker_addresses[0], shared->worker_addresses[1]}) {
    EXPECT_EQ(CheckHealth(PlainChannel(address), "").error_code(), grpc::StatusCode::UNAVAILABLE)
        << address;
  }
}

TEST_F(SecurityE2ETest, PublicApiNeedsTheBearerToken) {
  auto channel = TlsChannel(shared->router_address, "ca.pem", "");
  std::string changed_case = shared->token;
  for (char& c : changed_case) c = static_cast<char>(std::toupper(c));
  ASSERT_NE(changed_case, shared->token);
  const std::vector<std::string> bad_values = {"",
                                               "Bearer wrong",
                                               "Bearer " + changed_case,
                                               "Bearer " + shared->token + "x",
                                               "Bearer " + shared->token.substr(1),
                                               "Basic " + shared->token,
                                               shared->token,
                                               "Bearer "};
  for (const std::string& bad : bad_values) {
    grpc::Status status = ModelInfo(channel, bad);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "'" << bad << "'";
  }
  EXPECT_TRUE(ModelInfo(channel, "Bearer " + shared->token).ok());
  EXPECT_TRUE(ModelInfo(channel, "bearer " + shared->token).ok());
  // Health needs no token (probes cannot send one).
  EXPECT_TRUE(CheckHealth(channel, "").ok());
}

TEST_F(SecurityE2ETest, PlaintextHealthPortsAnswer) {
  std::vector<std::pair<std::string, std::string>> ports = {
      {shared->router_health, kRouterService},
      {shared->worker_health[0], kExpertService},
      {shared->worker_health[1], kExpertService}};
  for (const auto& [address, service] : ports) {
    for (const std::string& name : {std::string(), service}) {
      bool serving = false;
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      grpc::Status status;
      do {
        status = CheckHealth(PlainChannel(address), name, &serving);
      } while (status.ok() && !serving && absl::Now() < deadline &&
               (absl::SleepFor(absl::Milliseconds(100)), true));
      EXPECT_TRUE(status.ok()) << address << " " << status.error_message();
      EXPECT_TRUE(serving) << address << " '" << name << "'";
    }
    // The plaintext port serves health only.
    EXPECT_EQ(ModelInfo(PlainChannel(address), "Bearer " + shared->token).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
}

TEST_F(SecurityE2ETest, PublicApiCanRequireClientCertificates) {
  Subprocess router;
  ASSERT_TRUE(router
                  .Start({BinaryDir() + "/router/jamba-router", "--model",
                          testing::SourceDir() + "/tests/testdata/tiny_model", "--port", "0",
                          "--tls_cert", Cert("server.pem"), "--tls_key", Cert("server.key"),
                          "--tls_client_ca", Cert("ca.pem")})
                  .ok());
  absl::StatusOr<std::string> address = router.WaitForAddress();
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_TRUE(ModelInfo(TlsChannel(*address, "ca.pem", "client"), "").ok());
  EXPECT_EQ(ModelInfo(TlsChannel(*address, "ca.pem", ""), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ModelInfo(TlsChannel(*address, "ca.pem", "other-client"), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(router.Stop(), 0);
}

TEST_F(SecurityE2ETest, TokenWithoutTlsIsRefusedAtStart) {
  Subprocess router;
  ASSERT_TRUE(router
                  .Start({BinaryDir() + "/router/jamba-router", "--model",
                          testing::SourceDir() + "/tests/testdata/tiny_model", "--port", "0",
                          "--auth_token_file", Cert("token")})
                  .ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (router.running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(router.Stop(), 1);
  EXPECT_NE(router.log().find("a bearer token needs TLS"), std::string::npos) << router.log();
}

// Copies `from` over `to` the way a Secret mount changes: write aside,
// then rename.
void Replace(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".new", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(to + ".new", to);
}

TEST_F(SecurityE2ETest, RotatedCertificatesReachNewConnections) {
  const std::string dir = shared->certs + "/rotating";
  std::filesystem::create_directories(dir);
  for (const char* name : {"server.pem", "server.key", "ca.pem"}) {
    std::filesystem::copy_file(Cert(name), dir + "/" + name);
  }
  Subprocess worker;
  ASSERT_TRUE(worker.Start(WorkerArgv("0-7", dir)).ok());
  absl::StatusOr<std::string> address = worker.WaitForAddress();
  ASSERT_TRUE(address.ok()) << address.status();
  std::string cn;
  ASSERT_TRUE(CheckHealth(TlsChannel(*address, "ca.pem", "client"), "", nullptr, &cn).ok());
  EXPECT_EQ(cn, "jamba-server");

  // New identity, and a new CA for clients: the intruder CA's client now.
  Replace(Cert("server2.pem"), dir + "/server.pem");
  Replace(Cert("server2.key"), dir + "/server.key");
  Replace(Cert("other-ca.pem"), dir + "/ca.pem");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::Status status;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    status = CheckHealth(TlsChannel(*address, "ca.pem", "other-client"), "", nullptr, &cn);
  } while (!(status.ok() && cn == "jamba-server-rotated") && absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << worker.log();
  EXPECT_EQ(cn, "jamba-server-rotated");
  // Clients of the old CA are refused from now on.
  EXPECT_EQ(CheckHealth(TlsChannel(*address, "ca.pem", "client"), "").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(worker.Stop(), 0);
}

}  // namespace
}  // namespace jamba
