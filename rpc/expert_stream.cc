#include "rpc/expert_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
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
  return driver_->RunUntil(
      [this] {
        absl::MutexLock lock(&mu_);
        return num_filled_ == static_cast<int>(results_.size());
      },
      deadline);
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
                                                  CompletionDriver* driver,
                                                  std::string description) {
  std::shared_ptr<ExpertStream> stream(new ExpertStream(driver, std::move(description)));
  ExpertStream* s = stream.get();
  s->self_ = stream;
  absl::MutexLock lock(&s->mu_);
  // The call's headers go out with its first write (StartCall then starts
  // no operation of its own, which would hold the write slot).
  s->context_.set_initial_metadata_corked(true);
  s->call_ = stub->PrepareAsyncCompute(&s->context_, driver->cq());
  s->call_->StartCall(nullptr);
  return stream;
}

bool ExpertStream::Send(std::shared_ptr<const ExpertRequest> request,
                        std::shared_ptr<PendingResponses> sink, int slot, bool* idle) {
  absl::MutexLock lock(&mu_);
  if (broken_ || retiring_) return false;
  if (idle != nullptr) *idle = !reading_;
  waiting_[request->tag()] = Waiter{std::move(sink), slot};
  writes_.push_back(std::move(request));
  StartWriteLocked();
  StartReadLocked();
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
  MaybeWritesDoneLocked();
  StartReadLocked();  // it ends when the worker ends the stream
}

bool ExpertStream::broken() {
  absl::MutexLock lock(&mu_);
  return broken_;
}

void ExpertStream::Cancel() {
  absl::MutexLock lock(&mu_);
  GrpcOpStarts(this);
  context_.TryCancel();
  StartReadLocked();  // it fails at once, and Finish follows
}

void ExpertStream::StartWriteLocked() {
  if (writing_ || writes_.empty()) return;
  writing_ = true;
  StartOpLocked([this] { call_->Write(*writes_.front(), write_done_.tag()); });
}

void ExpertStream::MaybeWritesDoneLocked() {
  if (!retiring_ || writing_ || broken_ || writes_done_) return;
  writes_done_ = true;
  StartOpLocked([this] { call_->WritesDone(writes_done_done_.tag()); });
}

void ExpertStream::StartReadLocked() {
  if (reading_ || read_ended_) return;
  reading_ = true;
  StartOpLocked([this] { call_->Read(&response_, read_done_.tag()); });
}

void ExpertStream::WaitDone() {
  driver_->RunUntil([this] { return done_.HasBeenNotified(); }, absl::InfiniteFuture());
}

void ExpertStream::OnReadDone(bool ok) {
  GrpcReactionStarts(this);
  std::shared_ptr<ExpertStream> release;
  Waiter waiter;
  ExpertResponse response;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {
      // The call is over (the worker ended it, it failed or was cancelled):
      // Finish says how, then the waiting requests fail.
      broken_ = read_ended_ = true;
      StartOpLocked([this] { call_->Finish(&status_, finish_done_.tag()); });
    } else {
      response = std::move(response_);
      response_.Clear();
      auto it = waiting_.find(response.tag());
      if (it != waiting_.end()) {
        waiter = std::move(it->second);
        waiting_.erase(it);
      }
      if (!waiting_.empty() || retiring_) StartReadLocked();
    }
    release = OpDoneLocked();
  }
  if (waiter.sink != nullptr) waiter.sink->Deliver(waiter.slot, std::move(response));
}

void ExpertStream::OnWriteDone(bool ok) {
  GrpcReactionStarts(this);
  std::shared_ptr<ExpertStream> release;
  {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    writing_ = false;
    if (!ok) broken_ = true;
    if (broken_) writes_.clear();
    StartWriteLocked();
    MaybeWritesDoneLocked();
    // A failed write means the call is over; make sure the read ends too.
    if (!ok) {
      context_.TryCancel();
      StartReadLocked();
    }
    release = OpDoneLocked();
  }
}

void ExpertStream::OnWritesDoneDone(bool ok) {
  GrpcReactionStarts(this);
  std::shared_ptr<ExpertStream> release;
  absl::MutexLock lock(&mu_);
  release = OpDoneLocked();
}

void ExpertStream::OnFinished(bool ok) {
  GrpcReactionStarts(this);
  std::shared_ptr<ExpertStream> release;
  absl::flat_hash_map<uint64_t, Waiter> waiting;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    why = status_.ok() ? std::string("the stream was closed by the worker")
                       : absl::StrCat("the stream failed: ", FromGrpcStatus(status_).ToString());
    broken_ = finished_ = true;
    // A write in flight keeps its entry until its own completion pops it.
    writes_.erase(writing_ ? writes_.begin() + 1 : writes_.begin(), writes_.end());
    waiting.swap(waiting_);
    release = OpDoneLocked();
  }
  for (auto& [tag, waiter] : waiting) {
    waiter.sink->Deliver(waiter.slot,
                         absl::UnavailableError(absl::StrCat(description_, ": ", why)));
  }
}

std::shared_ptr<ExpertStream> ExpertStream::OpDoneLocked() {
  if (--outstanding_ > 0 || !finished_) return nullptr;
  done_.Notify();
  return std::move(self_);
}

}  // namespace jamba::rpc
