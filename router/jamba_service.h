// JambaServiceImpl: the public jamba.v1.JambaService over an Engine.
//
// Every request is validated first (INVALID_ARGUMENT naming the field);
// accepted generations are queued in the Engine, whose events become
// stream messages. Nothing is written before admission, so a rejected
// call (RESOURCE_EXHAUSTED, UNAVAILABLE) ends Trailers-Only and stays
// retry-safe. A client cancel or disconnect cancels the generation; the
// call's deadline is honoured. Thread-safe.
#pragma once

#include <atomic>
#include <memory>

#include "jamba/v1/jamba.grpc.pb.h"
#include "mixer_worker/mixer.h"
#include "router/engine.h"
#include "router/metrics.h"
#include "router/request_validation.h"
#include "router/tokenizer.h"

namespace jamba::router {

class JambaServiceImpl final : public jamba::v1::JambaService::CallbackService {
 public:
  // All pointers must outlive the service; `tokenizer` may be null.
  JambaServiceImpl(Engine* engine, const mixer::Mixer* mixer, const Tokenizer* tokenizer,
                   RequestLimits limits, Metrics* metrics = nullptr);

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const jamba::v1::GenerateRequest* request,
                                     jamba::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<jamba::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const jamba::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const jamba::v1::GetModelInfoRequest* request,
                                         jamba::v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* CountTokens(grpc::CallbackServerContext* context,
                                        const jamba::v1::CountTokensRequest* request,
                                        jamba::v1::CountTokensResponse* response) override;

 private:
  absl::StatusOr<GenerationRequest> Prepare(grpc::CallbackServerContext* context,
                                            const jamba::v1::GenerateRequest& request) const;

  Engine* engine_;
  const mixer::Mixer* mixer_;
  const Tokenizer* tokenizer_;
  RequestLimits limits_;
  Metrics* metrics_;
  mutable std::atomic<uint64_t> next_request_{1};
};

}  // namespace jamba::router
