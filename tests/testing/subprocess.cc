#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace jamba::testing {

std::string BinaryDir() {
  const char* env = std::getenv("JAMBA_BINARY_DIR");
  return env != nullptr ? env : JAMBA_BINARY_DIR_DEFAULT;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && exit_code_ < 0) Stop(SIGKILL);
}

absl::Status Subprocess::Start(const std::vector<std::string>& argv) {
  static int counter = 0;
  log_path_ = absl::StrCat(::testing::TempDir(), "/subprocess_", getpid(), "_", counter++, ".log");
  // Truncated here, before the child runs: a file left by an earlier test
  // process with the same pid must not be read as this child's output
  // (WaitForAddress once found a stale "listening on" line that way).
  const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", log_path_));
  pid_ = fork();
  if (pid_ < 0) {
    close(fd);
    return absl::InternalError("fork failed");
  }
  if (pid_ == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fd);
  return absl::OkStatus();
}

std::string Subprocess::log() const {
  std::ifstream file(log_path_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

absl::StatusOr<std::string> Subprocess::WaitForAddress(absl::Duration timeout,
                                                       absl::string_view marker) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string text = log();
    const size_t at = text.find(marker.data(), 0, marker.size());
    if (at != std::string::npos) {
      const size_t begin = at + marker.size();
      const size_t end = text.find_first_of(" \n", begin);
      if (end != std::string::npos) return text.substr(begin, end - begin);
    }
    if (!running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("process exited with ", exit_code_, ": ", text));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("no '", marker, "' line: ", log()));
}

int Subprocess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  if (exit_code_ >= 0) return exit_code_;
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  while (running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  if (exit_code_ < 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_code_ = 128 + SIGKILL;
  }
  return exit_code_;
}

}  // namespace jamba::testing
