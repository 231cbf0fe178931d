#include "router/generate_calls.h"

#include <utility>

#include "rpc/status_conversion.h"

namespace jamba::router {

using jamba::v1::GenerateStreamResponse;

absl::Status GenerationCall::Submit(GenerationRequest request) {
  absl::StatusOr<std::shared_ptr<Engine::Handle>> handle =
      engine_->Submit(std::move(request), this);
  if (!handle.ok()) return handle.status();
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    handle_ = *handle;
    cancel = cancel_requested_;
  }
  if (cancel) engine_->Cancel(*handle);
  return absl::OkStatus();
}

void GenerationCall::CancelGeneration() {
  std::shared_ptr<Engine::Handle> handle;
  {
    absl::MutexLock lock(&mu_);
    cancel_requested_ = true;
    handle = handle_;
  }
  if (handle != nullptr) engine_->Cancel(handle);
}

void GenerationCall::ReleaseFromGrpc() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    last = --owners_ == 0;
  }
  if (last) delete this;
}

void GenerationCall::ReleaseFromEngine() { ReleaseFromGrpc(); }

void GenerationCall::AddTokenInfo(const GeneratedToken& token, jamba::v1::TokenInfo* info) const {
  info->set_token_id(token.id);
  if (tokenizer_ != nullptr) info->set_text(tokenizer_->Decode({token.id}).value_or(""));
  info->set_logprob(token.logprob);
  for (const auto& [id, logprob] : token.top) {
    jamba::v1::TopLogprob* top = info->add_top_logprobs();
    top->set_token_id(id);
    if (tokenizer_ != nullptr) top->set_text(tokenizer_->Decode({id}).value_or(""));
    top->set_logprob(logprob);
  }
}

jamba::v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return jamba::v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos:
      return jamba::v1::FINISH_REASON_EOS;
    case FinishReason::kStopSequence:
      return jamba::v1::FINISH_REASON_STOP_SEQUENCE;
    case FinishReason::kStopToken:
      return jamba::v1::FINISH_REASON_STOP_TOKEN;
    case FinishReason::kContextLimit:
      return jamba::v1::FINISH_REASON_CONTEXT_LIMIT;
  }
  return jamba::v1::FINISH_REASON_UNSPECIFIED;
}

void FillUsageAndTiming(const FinishInfo& info, jamba::v1::Usage* usage,
                        jamba::v1::Timing* timing) {
  usage->set_prompt_tokens(info.prompt_tokens);
  usage->set_completion_tokens(info.completion_tokens);
  usage->set_total_tokens(info.prompt_tokens + info.completion_tokens);
  timing->set_queue_seconds(absl::ToDoubleSeconds(info.queue_time));
  timing->set_first_token_seconds(absl::ToDoubleSeconds(info.first_token_time));
  timing->set_total_seconds(absl::ToDoubleSeconds(info.total_time));
}

// ---- StreamCall ----

StreamCall::StreamCall(Engine* engine, const Tokenizer* tokenizer, std::string request_id,
                       bool logprobs)
    : GenerationCall(engine, tokenizer), request_id_(std::move(request_id)), logprobs_(logprobs) {}

void StreamCall::Start(absl::StatusOr<GenerationRequest> request) {
  absl::Status status = request.ok() ? Submit(*std::move(request)) : request.status();
  if (status.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    ended_ = finished_ = true;
  }
  Finish(rpc::ToGrpcStatus(status));  // Trailers-Only: nothing was sent yet
  ReleaseFromEngine();
}

void StreamCall::OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) {
  GenerateStreamResponse message;
  jamba::v1::GenerateChunk* chunk = message.mutable_chunk();
  chunk->set_text(text);
  for (const GeneratedToken& token : tokens) {
    chunk->add_token_ids(token.id);
    if (logprobs_) AddTokenInfo(token, chunk->add_tokens());
  }
  Enqueue(std::move(message));
}

void StreamCall::OnFinish(const FinishInfo& info) {
  GenerateStreamResponse message;
  jamba::v1::GenerateFinal* final = message.mutable_final();
  final->set_request_id(request_id_);
  final->set_finish_reason(ToProto(info.reason));
  final->set_matched_stop(info.matched_stop);
  final->set_seed(info.seed);
  FillUsageAndTiming(info, final->mutable_usage(), final->mutable_timing());
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(message));
    ended_ = true;
    final_status_ = grpc::Status::OK;
    WriteNextLocked();
  }
  ReleaseFromEngine();
}

void StreamCall::OnError(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    final_status_ = rpc::ToGrpcStatus(status);
    WriteNextLocked();
  }
  ReleaseFromEngine();
}

void StreamCall::Enqueue(GenerateStreamResponse message) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(message));
  WriteNextLocked();
}

void StreamCall::WriteNextLocked() {
  if (writing_ || finished_) return;
  if (!queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&in_flight_);
  } else if (ended_) {
    finished_ = true;
    Finish(final_status_);
  }
}

void StreamCall::OnWriteDone(bool ok) {
  if (!ok) CancelGeneration();
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!ok) queue_.clear();
  WriteNextLocked();
}

void StreamCall::OnCancel() { CancelGeneration(); }

void StreamCall::OnDone() { ReleaseFromGrpc(); }

// ---- UnaryCall ----

UnaryCall::UnaryCall(Engine* engine, const Tokenizer* tokenizer,
                     jamba::v1::GenerateResponse* response, bool logprobs)
    : GenerationCall(engine, tokenizer), response_(response), logprobs_(logprobs) {}

void UnaryCall::Start(absl::StatusOr<GenerationRequest> request) {
  if (request.ok()) response_->set_request_id(request->request_id);
  absl::Status status = request.ok() ? Submit(*std::move(request)) : request.status();
  if (status.ok()) return;
  Finish(rpc::ToGrpcStatus(status));
  ReleaseFromEngine();
}

void UnaryCall::OnTokens(const std::vector<GeneratedToken>& tokens, const std::string& text) {
  response_->mutable_text()->append(text);
  for (const GeneratedToken& token : tokens) {
    response_->add_token_ids(token.id);
    if (logprobs_) AddTokenInfo(token, response_->add_tokens());
  }
}

void UnaryCall::OnFinish(const FinishInfo& info) {
  response_->set_finish_reason(ToProto(info.reason));
  response_->set_matched_stop(info.matched_stop);
  response_->set_seed(info.seed);
  FillUsageAndTiming(info, response_->mutable_usage(), response_->mutable_timing());
  Finish(grpc::Status::OK);
  ReleaseFromEngine();
}

void UnaryCall::OnError(const absl::Status& status) {
  Finish(rpc::ToGrpcStatus(status));
  ReleaseFromEngine();
}

void UnaryCall::OnCancel() { CancelGeneration(); }

void UnaryCall::OnDone() { ReleaseFromGrpc(); }

}  // namespace jamba::router
