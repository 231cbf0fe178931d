// The reactors of the two generation RPCs. Each is also the Engine's
// observer for its request; it frees itself once gRPC (OnDone) and the
// engine (OnFinish / OnError) are both done with it.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "jamba/v1/jamba.grpc.pb.h"
#include "router/engine.h"
#include "router/tokenizer.h"

namespace jamba::router {

// Shared lifetime and cancellation logic.
class GenerationCall : public GenerationObserver {
 protected:
  GenerationCall(Engine* engine, const Tokenizer* tokenizer)
      : engine_(engine), tokenizer_(tokenizer) {}

  // Queues the request; returns the error to finish the call with at once.
  absl::Status Submit(GenerationRequest request);
  void CancelGeneration();
  // Each owner calls its Release once; the last one deletes the call.
  void ReleaseFromGrpc();
  void ReleaseFromEngine();
  void AddTokenInfo(const GeneratedToken& token, jamba::v1::TokenInfo* info) const;

  Engine* const engine_;
  const Tokenizer* const tokenizer_;
  absl::Mutex mu_;

 private:
  std::shared_ptr<Engine::Handle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  int owners_ ABSL_GUARDED_BY(mu_) = 2;
};

class StreamCall final : public GenerationCall,
                         public grpc::ServerWriteReactor<jamba::v1::GenerateStreamResponse> {
 public:
  StreamCall(Engine* engine, const Tokenizer* tokenizer, std::string request_id, bool logprobs);
  // Starts the generation, or finishes the call with `rejected`.
  void Start(absl::StatusOr<GenerationRequest> request);

  void OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) override;
  void OnFinish(const FinishInfo& info) override;
  void OnError(const absl::Status& status) override;

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void Enqueue(jamba::v1::GenerateStreamResponse message);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string request_id_;
  const bool logprobs_;
  std::deque<jamba::v1::GenerateStreamResponse> queue_ ABSL_GUARDED_BY(mu_);
  jamba::v1::GenerateStreamResponse in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // no more messages will be queued
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

class UnaryCall final : public GenerationCall, public grpc::ServerUnaryReactor {
 public:
  UnaryCall(Engine* engine, const Tokenizer* tokenizer, jamba::v1::GenerateResponse* response,
            bool logprobs);
  void Start(absl::StatusOr<GenerationRequest> request);

  void OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) override;
  void OnFinish(const FinishInfo& info) override;
  void OnError(const absl::Status& status) override;

  void OnCancel() override;
  void OnDone() override;

 private:
  jamba::v1::GenerateResponse* const response_;
  const bool logprobs_;
};

// FinishInfo -> proto fields.
jamba::v1::FinishReason ToProto(FinishReason reason);
void FillUsageAndTiming(const FinishInfo& info, jamba::v1::Usage* usage, jamba::v1::Timing* timing);

}  // namespace jamba::router
