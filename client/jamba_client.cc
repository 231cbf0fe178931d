// jamba-client: a command-line client of jamba.v1.JambaService.
//
//   jamba-client generate "Once upon a time" [--target 127.0.0.1:50051] [sampling flags]
//   jamba-client generate --ids 1,17,42 ...
//   jamba-client info | count "some text" | health
//
// `generate` streams the text as it arrives, then prints the finish reason
// and usage on stderr. Errors are one line and a non-zero exit.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "security/client_flags.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "router address");
ABSL_FLAG(std::string, ids, "", "prompt as comma-separated token ids instead of text");
ABSL_FLAG(int, max_new_tokens, 64, "tokens to generate at most");
ABSL_FLAG(double, temperature, 1.0, "0 for greedy");
ABSL_FLAG(int, top_k, 0, "keep the k most likely tokens (0: all)");
ABSL_FLAG(double, top_p, 1.0, "nucleus sampling threshold");
ABSL_FLAG(double, min_p, 0.0, "minimum probability relative to the top token");
ABSL_FLAG(double, repetition_penalty, 1.0, "penalty for repeated tokens (1: off)");
ABSL_FLAG(double, presence_penalty, 0.0, "presence penalty");
ABSL_FLAG(double, frequency_penalty, 0.0, "frequency penalty");
ABSL_FLAG(int64_t, seed, -1, "sampling seed (-1: random)");
ABSL_FLAG(std::vector<std::string>, stop, {}, "stop strings, comma-separated");
ABSL_FLAG(bool, ignore_eos, false, "keep generating after end-of-sequence");
ABSL_FLAG(bool, print_ids, false,
          "print the generated token ids (comma-separated) instead of the text, e.g. for a "
          "model without a tokenizer");
ABSL_FLAG(int, timeout_s, 120, "deadline of the call in seconds");
ABSL_FLAG(std::string, service, "jamba.v1.JambaService",
          "health: the service to check (\"\" is the process's liveness)");

namespace {

int Fail(const std::string& what, const grpc::Status& status) {
  std::fprintf(stderr, "jamba-client: %s: %s (%d)\n", what.c_str(), status.error_message().c_str(),
               static_cast<int>(status.error_code()));
  return 1;
}

// TLS and token flags (security/client_flags.h); set in main.
const jamba::security::ClientSecurity* g_security = nullptr;

// The call's deadline and token.
void PrepareContext(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(absl::GetFlag(FLAGS_timeout_s)));
  g_security->Apply(context);
}

bool SetInput(const std::vector<char*>& args, jamba::v1::GenerateRequest* request) {
  const std::string ids = absl::GetFlag(FLAGS_ids);
  if (!ids.empty()) {
    for (absl::string_view piece : absl::StrSplit(ids, ',', absl::SkipWhitespace())) {
      int32_t id;
      if (!absl::SimpleAtoi(piece, &id)) return false;
      request->mutable_token_ids()->add_ids(id);
    }
    return true;
  }
  if (args.size() < 3) return false;
  request->set_text(args[2]);
  return true;
}

int Generate(jamba::v1::JambaService::Stub& stub, const std::vector<char*>& args) {
  jamba::v1::GenerateRequest request;
  if (!SetInput(args, &request)) {
    std::fprintf(stderr, "jamba-client: generate needs a prompt argument or --ids 1,2,3\n");
    return 1;
  }
  jamba::v1::SamplingParams* s = request.mutable_sampling();
  s->set_max_new_tokens(absl::GetFlag(FLAGS_max_new_tokens));
  s->set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  s->set_top_k(absl::GetFlag(FLAGS_top_k));
  s->set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  s->set_min_p(static_cast<float>(absl::GetFlag(FLAGS_min_p)));
  s->set_repetition_penalty(static_cast<float>(absl::GetFlag(FLAGS_repetition_penalty)));
  s->set_presence_penalty(static_cast<float>(absl::GetFlag(FLAGS_presence_penalty)));
  s->set_frequency_penalty(static_cast<float>(absl::GetFlag(FLAGS_frequency_penalty)));
  if (absl::GetFlag(FLAGS_seed) >= 0) s->set_seed(absl::GetFlag(FLAGS_seed));
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) s->add_stop(stop);
  s->set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));

  grpc::ClientContext context;
  PrepareContext(&context);
  std::unique_ptr<grpc::ClientReader<jamba::v1::GenerateStreamResponse>> reader =
      stub.GenerateStream(&context, request);
  jamba::v1::GenerateStreamResponse message;
  const bool print_ids = absl::GetFlag(FLAGS_print_ids);
  const char* separator = "";
  while (reader->Read(&message)) {
    if (message.has_chunk()) {
      if (print_ids) {
        for (int32_t id : message.chunk().token_ids()) {
          std::printf("%s%d", separator, id);
          separator = ",";
        }
      } else {
        std::fputs(message.chunk().text().c_str(), stdout);
      }
      std::fflush(stdout);
    } else if (message.has_final()) {
      const jamba::v1::GenerateFinal& f = message.final();
      std::fprintf(stderr,
                   "\n[%s: %u prompt + %u generated tokens, first token %.3f s, total %.3f s]\n",
                   jamba::v1::FinishReason_Name(f.finish_reason()).c_str(),
                   f.usage().prompt_tokens(), f.usage().completion_tokens(),
                   f.timing().first_token_seconds(), f.timing().total_seconds());
    }
  }
  grpc::Status status = reader->Finish();
  return status.ok() ? 0 : Fail("generate", status);
}

int Info(jamba::v1::JambaService::Stub& stub) {
  grpc::ClientContext context;
  PrepareContext(&context);
  jamba::v1::ModelInfo info;
  grpc::Status status = stub.GetModelInfo(&context, {}, &info);
  if (!status.ok()) return Fail("info", status);
  info.clear_config_json();
  std::printf("%s", info.DebugString().c_str());
  return 0;
}

int Count(jamba::v1::JambaService::Stub& stub, const std::vector<char*>& args) {
  if (args.size() < 3) {
    std::fprintf(stderr, "jamba-client: count needs a text argument\n");
    return 1;
  }
  jamba::v1::CountTokensRequest request;
  request.set_text(args[2]);
  grpc::ClientContext context;
  PrepareContext(&context);
  jamba::v1::CountTokensResponse response;
  grpc::Status status = stub.CountTokens(&context, request, &response);
  if (!status.ok()) return Fail("count", status);
  std::printf("%u tokens (context limit %llu)\n", response.count(),
              static_cast<unsigned long long>(response.context_limit()));
  return 0;
}

// Exit 0 when the router reports SERVING for --service (readiness by default).
int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  g_security->Apply(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return Fail("health", status);
  std::printf("%s\n",
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "jamba-client generate \"prompt\" | info | count \"text\" | health [flags]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr, "jamba-client: expected a command: generate, info or count\n");
    return 1;
  }
  absl::StatusOr<jamba::security::ClientSecurity> security =
      jamba::security::ClientSecurity::FromFlags();
  if (!security.ok()) {
    std::fprintf(stderr, "jamba-client: %s\n", std::string(security.status().message()).c_str());
    return 1;
  }
  g_security = &*security;
  auto channel = security->CreateChannel(absl::GetFlag(FLAGS_target));
  auto stub = jamba::v1::JambaService::NewStub(channel);
  const std::string command = args[1];
  if (command == "generate") return Generate(*stub, args);
  if (command == "info") return Info(*stub);
  if (command == "count") return Count(*stub, args);
  if (command == "health") return Health(channel);
  std::fprintf(stderr, "jamba-client: unknown command '%s'\n", command.c_str());
  return 1;
}
