#include "router/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "router/detokenizer.h"
#include "router/sampler.h"
#include "router/stop_matcher.h"

namespace jamba::router {

class Engine::Handle {
 public:
  std::atomic<bool> cancelled{false};
};

struct Engine::Sequence {
  uint64_t id = 0;
  GenerationRequest request;
  GenerationObserver* observer = nullptr;
  std::shared_ptr<Handle> handle;
  size_t prefilled = 0;  // prompt tokens fed so far
  std::vector<int32_t> output;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<Detokenizer> detokenizer;  // null without a tokenizer
  std::unique_ptr<StopMatcher> stop;
  absl::Time started;
  absl::Time first_token;
  absl::Time last_token;
  int64_t state_bytes = 0;  // reserved from the pool while running
  bool done = false;
};

Engine::Engine(mixer::Mixer* mixer, const Tokenizer* tokenizer, EngineOptions options,
               Metrics* metrics)
    : mixer_(mixer), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    shutdown_ = true;
  }
  thread_.join();
}

absl::StatusOr<std::shared_ptr<Engine::Handle>> Engine::Submit(GenerationRequest request,
                                                               GenerationObserver* observer) {
  auto seq = std::make_unique<Sequence>();
  seq->request = std::move(request);
  seq->observer = observer;
  seq->handle = std::make_shared<Handle>();
  seq->sampler = std::make_unique<Sampler>(seq->request.sampling, seq->request.prompt);
  if (tokenizer_ != nullptr) {
    seq->detokenizer = std::make_unique<Detokenizer>(tokenizer_, seq->request.prompt);
  }
  seq->stop = std::make_unique<StopMatcher>(seq->request.sampling.stop);
  std::shared_ptr<Handle> handle = seq->handle;
  const int64_t tokens =
      std::min<int64_t>(seq->request.prompt.size() + seq->request.sampling.max_new_tokens,
                        mixer_->config().max_position_embeddings);
  seq->state_bytes = StateBytesFor(tokens);
  if (seq->state_bytes > options_.state_budget_bytes) {
    if (metrics_) metrics_->CountFailure(FailureReason::kValidation);
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt + max_new_tokens = ", tokens, " tokens need ", seq->state_bytes,
        " bytes of sequence state; the state pool holds ", options_.state_budget_bytes));
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the router is shutting down");
  if (static_cast<int>(waiting_.size()) >= options_.max_waiting) {
    if (metrics_) metrics_->CountFailure(FailureReason::kOverloaded);
    return absl::ResourceExhaustedError(
        absl::StrCat("the waiting queue is full (", options_.max_waiting, " requests)"));
  }
  seq->id = next_id_++;
  waiting_.push_back(std::move(seq));
  return handle;
}

void Engine::Cancel(const std::shared_ptr<Handle>& handle) { handle->cancelled.store(true); }

void Engine::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

int Engine::num_waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

void Engine::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !waiting_.empty() || !running_.empty();
      };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) break;
    }
    AdmitWaiting();
    Step();
  }
  for (auto& seq : running_) Fail(*seq, absl::CancelledError("the router is shutting down"));
  running_.clear();
  absl::MutexLock lock(&mu_);
  for (auto& seq : waiting_)
    seq->observer->OnError(absl::CancelledError("the router is shutting down"));
  waiting_.clear();
}

void Engine::AdmitWaiting() {
  // Drop queued requests that were cancelled or ran out of time.
  std::vector<std::pair<std::unique_ptr<Sequence>, absl::Status>> dropped;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      absl::Status why;
      if ((*it)->handle->cancelled.load()) {
        why = absl::CancelledError("cancelled by the client");
      } else if (now >= (*it)->request.deadline) {
        why = absl::DeadlineExceededError("the deadline passed while queued");
      }
      if (why.ok()) {
        ++it;
        continue;
      }
      dropped.emplace_back(std::move(*it), why);
      it = waiting_.erase(it);
    }
  }
  for (auto& [seq, why] : dropped) {
    if (metrics_ != nullptr) metrics_->CountFailure(FailureReasonOf(why));
    seq->observer->OnError(why);
  }
  while (static_cast<int>(running_.size()) < options_.max_running) {
    std::unique_ptr<Sequence> seq;
    {
      absl::MutexLock lock(&mu_);
      if (waiting_.empty()) break;
      // First come, first served: the head waits until its state fits.
      if (state_used_.load() + waiting_.front()->state_bytes > options_.state_budget_bytes) break;
      seq = std::move(waiting_.front());
      waiting_.pop_front();
    }
    seq->started = absl::Now();
    const int64_t reserve =
        std::min<int64_t>(seq->request.prompt.size() + seq->request.sampling.max_new_tokens,
                          mixer_->config().max_position_embeddings);
    absl::Status added = mixer_->AddSequence(seq->id, reserve);
    if (!added.ok()) {
      if (metrics_) metrics_->CountFailure(FailureReasonOf(added));
      seq->observer->OnError(added);
      continue;
    }
    if (metrics_)
      metrics_->ObserveQueueTime(absl::ToDoubleSeconds(seq->started - seq->request.arrival));
    state_used_.fetch_add(seq->state_bytes);
    running_.push_back(std::move(seq));
  }
  running_count_.store(static_cast<int>(running_.size()));
  PublishGauges();
}

void Engine::PublishGauges() {
  if (metrics_ == nullptr) return;
  metrics_->SetRunning(static_cast<int>(running_.size()));
  metrics_->SetWaiting(num_waiting());
  metrics_->SetStatePool(state_used_.load(), options_.state_budget_bytes);
}

int64_t Engine::StateBytesFor(int64_t tokens) const {
  return model::SequenceState::FixedBytes(mixer_->config()) +
         tokens * model::SequenceState::KvBytesPerToken(mixer_->config(), options_.kv_cache_dtype);
}

std::string Engine::CapacitySummary() const {
  const model::JambaConfig& c = mixer_->config();
  const int64_t fixed = model::SequenceState::FixedBytes(c);
  const int64_t per_token = model::SequenceState::KvBytesPerToken(c, options_.kv_cache_dtype);
  std::string summary =
      absl::StrCat("state pool ", options_.state_budget_bytes >> 20, " MiB; ", fixed,
                   " B conv/SSM state per sequence + ", per_token, " B KV cache per token:");
  std::vector<int64_t> contexts;
  for (int64_t context : {int64_t{1024}, int64_t{4096}}) {
    if (context < c.max_position_embeddings) contexts.push_back(context);
  }
  contexts.push_back(c.max_position_embeddings);
  for (int64_t context : contexts) {
    absl::StrAppend(&summary, " ", options_.state_budget_bytes / StateBytesFor(context),
                    " sequences at ", context, " tokens;");
  }
  absl::StrAppend(&summary, " at most ", options_.max_running, " run at once");
  return summary;
}

bool Engine::Step() {
  const absl::Time now = absl::Now();
  for (auto& seq : running_) {
    if (seq->handle->cancelled.load()) Fail(*seq, absl::CancelledError("cancelled by the client"));
    if (now >= seq->request.deadline) {
      Fail(*seq, absl::DeadlineExceededError("the deadline passed during generation"));
    }
  }
  // Decoding sequences take one token each; prompts share what is left.
  std::vector<mixer::MixerStep> steps;
  std::vector<Sequence*> stepped;
  int64_t budget = options_.max_step_tokens;
  for (auto& seq : running_) {
    if (seq->done || seq->prefilled < seq->request.prompt.size()) continue;
    steps.push_back({seq->id, absl::MakeConstSpan(&seq->output.back(), 1)});
    stepped.push_back(seq.get());
    --budget;
  }
  for (auto& seq : running_) {
    if (seq->done || seq->prefilled >= seq->request.prompt.size()) continue;
    if (budget <= 0 && !steps.empty()) break;
    const size_t n = std::min<size_t>(seq->request.prompt.size() - seq->prefilled,
                                      static_cast<size_t>(std::max<int64_t>(budget, 1)));
    steps.push_back({seq->id, absl::MakeConstSpan(seq->request.prompt).subspan(seq->prefilled, n)});
    stepped.push_back(seq.get());
    budget -= static_cast<int64_t>(n);
  }
  if (!steps.empty()) {
    absl::Time deadline = absl::InfiniteFuture();
    for (const Sequence* seq : stepped) deadline = std::min(deadline, seq->request.deadline);
    std::vector<absl::Status> step_status(steps.size());
    absl::StatusOr<Tensor> logits = mixer_->Forward(steps, deadline, absl::MakeSpan(step_status));
    const int64_t V = mixer_->config().vocab_size;
    for (size_t i = 0; i < stepped.size(); ++i) {
      Sequence& seq = *stepped[i];
      if (!logits.ok() || !step_status[i].ok()) {
        Fail(seq, logits.ok() ? step_status[i] : logits.status());
        continue;
      }
      if (seq.prefilled < seq.request.prompt.size()) {
        seq.prefilled += steps[i].tokens.size();
        if (seq.prefilled < seq.request.prompt.size()) continue;
      }
      Emit(seq, logits->data<float>() + i * V);
    }
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [](const std::unique_ptr<Sequence>& s) { return s->done; }),
                 running_.end());
  running_count_.store(static_cast<int>(running_.size()));
  PublishGauges();
  return !steps.empty();
}

void Engine::Emit(Sequence& seq, const float* logits) {
  const model::JambaConfig& config = mixer_->config();
  const SamplingOptions& o = seq.request.sampling;
  absl::StatusOr<SampleResult> sampled =
      seq.sampler->Sample(absl::MakeConstSpan(logits, config.vocab_size));
  if (!sampled.ok()) return Fail(seq, sampled.status());
  GeneratedToken token;
  token.id = sampled->token;
  token.logprob = sampled->logprob;
  token.top = std::move(sampled->top);
  const absl::Time now = absl::Now();
  if (metrics_ != nullptr) {
    if (seq.output.empty()) {
      metrics_->ObserveFirstToken(absl::ToDoubleSeconds(now - seq.request.arrival));
    } else {
      metrics_->ObserveInterToken(absl::ToDoubleSeconds(now - seq.last_token));
    }
    metrics_->CountGeneratedToken();
  }
  if (seq.output.empty()) seq.first_token = now;
  seq.last_token = now;
  seq.output.push_back(token.id);

  std::string text = seq.detokenizer ? seq.detokenizer->Add(token.id) : std::string();
  StopMatcher::Result stop = seq.stop->Feed(text);
  seq.observer->OnTokens({token}, stop.text);
  if (stop.matched) return Finish(seq, FinishReason::kStopSequence, stop.stop);
  if (std::find(o.stop_token_ids.begin(), o.stop_token_ids.end(), token.id) !=
      o.stop_token_ids.end()) {
    return Finish(seq, FinishReason::kStopToken);
  }
  if (!o.ignore_eos && config.is_eos(token.id)) return Finish(seq, FinishReason::kEos);
  if (static_cast<int>(seq.output.size()) >= o.max_new_tokens) {
    return Finish(seq, FinishReason::kLength);
  }
  if (static_cast<int64_t>(seq.request.prompt.size() + seq.output.size()) >=
      config.max_position_embeddings) {
    return Finish(seq, FinishReason::kContextLimit);
  }
}

void Engine::Finish(Sequence& seq, FinishReason reason, const std::string& stop) {
  if (reason != FinishReason::kStopSequence) {
    std::string rest = seq.detokenizer ? seq.detokenizer->Flush() : std::string();
    StopMatcher::Result tail = seq.stop->Feed(rest);
    std::string text = tail.text + (tail.matched ? std::string() : seq.stop->Flush());
    if (tail.matched) {
      reason = FinishReason::kStopSequence;
    }
    if (!text.empty()) seq.observer->OnTokens({}, text);
    if (tail.matched) return Finish(seq, reason, tail.stop);
  }
  const absl::Time now = absl::Now();
  FinishInfo info;
  info.reason = reason;
  info.matched_stop = stop;
  info.prompt_tokens = static_cast<int>(seq.request.prompt.size());
  info.completion_tokens = static_cast<int>(seq.output.size());
  info.queue_time = seq.started - seq.request.arrival;
  info.first_token_time = seq.first_token - seq.request.arrival;
  info.total_time = now - seq.request.arrival;
  info.seed = seq.request.sampling.seed;
  if (metrics_ != nullptr) {
    metrics_->ObserveFinished(reason, absl::ToDoubleSeconds(info.total_time), info.prompt_tokens,
                              info.completion_tokens);
  }
  Release(seq);
  seq.observer->OnFinish(info);
}

void Engine::Fail(Sequence& seq, const absl::Status& status) {
  if (seq.done) return;
  if (metrics_ != nullptr) metrics_->CountFailure(FailureReasonOf(status));
  Release(seq);
  seq.observer->OnError(status);
}

void Engine::Release(Sequence& seq) {
  seq.done = true;
  mixer_->ReleaseSequence(seq.id);
  state_used_.fetch_sub(seq.state_bytes);
}

}  // namespace jamba::router
