#include "rpc/expert_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_tsan.h"
#include "rpc/status_conversion.h"

namespace jamba::rpc {

void PendingResponses::Deliver(int slot, absl::StatusOr<ExpertResponse> result) {
  absl::MutexLock lock(&mu_);
  if (results_[slot].has_value()) return;
  results_[slot] = std::move(result);
  filled_at_[slot] = absl::Now();
  ++num_filled_;
}

absl::Time PendingResponses::filled_at(int slot) {
  absl::MutexLock lock(&mu_);
  return filled_at_[slot];
}

bool PendingResponses::WaitUntil(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto all_filled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return num_filled_ == static_cast<int>(results_.size());
  };
  return mu_.AwaitWithDeadline(absl::Condition(&all_filled), deadline);
}

bool PendingResponses::filled(int slot) {
  absl::MutexLock lock(&mu_);
  return results_[slot].has_value();
}

absl::StatusOr<ExpertResponse> PendingResponses::Take(int slot) {
  absl::MutexLock lock(&mu_);
  return std::move(*results_[slot]);
}

std::shared_ptr<ExpertStream> ExpertStream::Start(ExpertService::StubInterface* stub,
                                                  std::string description) {
  std::shared_ptr<ExpertStream> stream(new ExpertStream(std::move(description)));
  stream->self_ = stream;
  stub->async()->Compute(&stream->context_, stream.get());
  // The hold lets Send start writes from outside reactions; OnReadDone(false)
  // removes it once the stream is over.
  stream->AddHold();
  GrpcOpStarts(stream.get());
  stream->StartRead(&stream->response_);
  stream->StartCall();
  return stream;
}

bool ExpertStream::Send(std::shared_ptr<const ExpertRequest> request,
                        std::shared_ptr<PendingResponses> sink, int slot) {
  absl::MutexLock lock(&mu_);
  if (broken_ || retiring_) return false;
  waiting_[request->tag()] = Waiter{std::move(sink), slot};
  writes_.push_back(std::move(request));
  if (!writing_) {
    writing_ = true;
    GrpcOpStarts(this);
    StartWrite(writes_.front().get());
  }
  return true;
}

void ExpertStream::Abandon(uint64_t tag) {
  absl::MutexLock lock(&mu_);
  waiting_.erase(tag);
}

void ExpertStream::Retire() {
  absl::MutexLock lock(&mu_);
  if (broken_ || retiring_) return;
  retiring_ = true;
  if (!writing_) {
    writes_done_ = true;
    GrpcOpStarts(this);
    StartWritesDone();
  }
}

bool ExpertStream::broken() {
  absl::MutexLock lock(&mu_);
  return broken_;
}

void ExpertStream::Cancel() {
  GrpcOpStarts(this);
  context_.TryCancel();
}

void ExpertStream::OnReadDone(bool ok) {
  GrpcReaction reaction(this);
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    GrpcOpStarts(this);
    RemoveHold();
    return;
  }
  ExpertResponse response = std::move(response_);
  response_.Clear();
  Waiter waiter;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiting_.find(response.tag());
    if (it != waiting_.end()) {
      waiter = std::move(it->second);
      waiting_.erase(it);
    }
  }
  GrpcOpStarts(this);
  StartRead(&response_);
  if (waiter.sink != nullptr) waiter.sink->Deliver(waiter.slot, std::move(response));
}

void ExpertStream::OnWriteDone(bool ok) {
  GrpcReaction reaction(this);
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    if (!ok) {
      broken_ = true;
      cancel = true;
    }
    if (broken_) writes_.clear();
    writing_ = !writes_.empty();
    if (writing_) {
      GrpcOpStarts(this);
      StartWrite(writes_.front().get());
    } else if (retiring_ && !broken_ && !writes_done_) {
      writes_done_ = true;
      GrpcOpStarts(this);
      StartWritesDone();
    }
  }
  // A failed write means the call is over; make sure the read ends too.
  if (cancel) {
    GrpcOpStarts(this);
    context_.TryCancel();
  }
}

void ExpertStream::OnDone(const grpc::Status& status) {
  GrpcReactionStarts(this);
  const std::string why =
      status.ok() ? std::string("the stream was closed by the worker")
                  : absl::StrCat("the stream failed: ", FromGrpcStatus(status).ToString());
  absl::flat_hash_map<uint64_t, Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    writes_.clear();
    waiting.swap(waiting_);
  }
  for (auto& [tag, waiter] : waiting) {
    waiter.sink->Deliver(waiter.slot,
                         absl::UnavailableError(absl::StrCat(description_, ": ", why)));
  }
  std::shared_ptr<ExpertStream> keep = std::move(self_);
  done_.Notify();
}

}  // namespace jamba::rpc
