#include "expert_worker/compute_stream.h"

#include <utility>

#include "rpc/grpc_tsan.h"

namespace jamba::expert {

ComputeStream::ComputeStream(ExpertServiceImpl* service, grpc::ServerCompletionQueue* cq)
    : service_(service), cq_(cq) {}

void ComputeStream::Accept(ExpertServiceImpl* service, grpc::ServerCompletionQueue* cq) {
  absl::ReaderMutexLock lock(&service->ops_mu_);
  if (service->stopping_) return;
  auto* stream = new ComputeStream(service, cq);
  rpc::GrpcOpStarts(stream);
  service->RequestCompute(&stream->context_, &stream->responder_, cq, cq, stream->accepted_.tag());
}

void ComputeStream::OnAccepted(bool ok) {
  rpc::GrpcReactionStarts(this);
  if (!ok) {  // the server is shutting down; no call came
    delete this;
    return;
  }
  Accept(service_, cq_);
  const bool registered = service_->Register(this);
  bool release;
  {
    absl::MutexLock lock(&mu_);
    registered_ = registered;
    if (registered) {
      StartOpLocked([&] { responder_.Read(&request_, read_done_.tag()); });
    } else {
      status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the expert worker is shutting down");
      draining_ = reads_done_ = true;
      MaybeFinishLocked();
    }
    release = OpDoneLocked();
  }
  if (release) Release();
}

void ComputeStream::OnReadDone(bool ok) {
  rpc::GrpcReactionStarts(this);
  bool answer = false, release = false;
  {
    absl::MutexLock lock(&mu_);
    // A request read after Finish started cannot be answered; the client
    // sees the stream end and sends it elsewhere.
    answer = ok && !finished_;
    if (answer) {
      handling_ = true;  // a drain now waits for this answer
    } else {
      reads_done_ = true;
      MaybeFinishLocked();
      release = OpDoneLocked();
    }
  }
  if (!answer) {
    if (release) Release();
    return;
  }
  ExpertResponse response = service_->Handle(request_, absl::Now());
  request_.Clear();
  {
    absl::MutexLock lock(&mu_);
    handling_ = false;
    if (!write_failed_) {
      writes_.push_back(std::move(response));
      StartWriteLocked();
    }
    // Read on unless draining; then the last write's completion finishes.
    if (draining_ || !StartOpLocked([&] { responder_.Read(&request_, read_done_.tag()); })) {
      reads_done_ = true;
    }
    MaybeFinishLocked();
    release = OpDoneLocked();
  }
  if (release) Release();
}

void ComputeStream::OnWriteDone(bool ok) {
  rpc::GrpcReactionStarts(this);
  bool release;
  {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    writing_ = false;
    if (!ok) {
      write_failed_ = true;
      writes_.clear();
      status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "writing a response failed");
    }
    StartWriteLocked();
    MaybeFinishLocked();
    release = OpDoneLocked();
  }
  if (release) Release();
}

void ComputeStream::OnFinished(bool ok) {
  rpc::GrpcReactionStarts(this);
  bool release;
  {
    absl::MutexLock lock(&mu_);
    release = OpDoneLocked();
  }
  if (release) Release();
}

void ComputeStream::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  MaybeFinishLocked();
}

void ComputeStream::StartWriteLocked() {
  if (writing_ || writes_.empty()) return;
  writing_ = StartOpLocked([&] { responder_.Write(writes_.front(), write_done_.tag()); });
}

void ComputeStream::MaybeFinishLocked() {
  if (finished_ || writing_ || handling_ || !(reads_done_ || draining_)) return;
  finished_ = true;
  StartOpLocked([&] { responder_.Finish(status_, finished_done_.tag()); });
}

bool ComputeStream::OpDoneLocked() {
  // Each live stream has an operation out, except once Finish returned or
  // the service stopped starting them.
  return --outstanding_ == 0;
}

void ComputeStream::Release() {
  bool registered;
  {
    absl::MutexLock lock(&mu_);
    registered = registered_;
  }
  if (registered) service_->Unregister(this);
  delete this;
}

}  // namespace jamba::expert
