// Subprocess: starts a real binary for end-to-end tests, captures its
// output in a file, finds the "listening on HOST:PORT" line it prints, and
// stops it (SIGTERM, then SIGKILL). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jamba::testing {

class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // kills the process if it still runs
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // argv[0] is the binary's path. Output (stdout and stderr) goes to a log file.
  absl::Status Start(const std::vector<std::string>& argv);
  // Waits for "<marker>HOST:PORT" in the output and returns "HOST:PORT".
  absl::StatusOr<std::string> WaitForAddress(absl::Duration timeout = absl::Seconds(60),
                                             absl::string_view marker = "listening on ");
  // SIGTERM (or `signal`) and wait; returns the exit code (128 + signal if killed).
  int Stop(int signal = 15, absl::Duration timeout = absl::Seconds(20));
  bool running();
  pid_t pid() const { return pid_; }
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

// The directory holding built binaries (JAMBA_BINARY_DIR, else the build
// folder this was built in).
std::string BinaryDir();

}  // namespace jamba::testing
