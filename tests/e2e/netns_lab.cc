#include "tests/e2e/netns_lab.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace jamba::testing {
namespace {

constexpr char kPrefix[] = "jamba-lab-";  // jamba-lab-<pid>-<host>
constexpr char kSubnet[] = "10.213.77.";

// Runs a shell command quietly; OK when it exits 0.
absl::Status Run(const std::string& command) {
  const int rc = std::system((command + " >/dev/null 2>&1").c_str());
  if (rc == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("`", command, "` failed (status ", rc, ")"));
}

// Deletes namespaces (and /etc/netns dirs) of lab processes that are gone.
void DeleteStale() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/var/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) continue;
    std::vector<std::string> parts = absl::StrSplit(name.substr(sizeof(kPrefix) - 1), '-');
    int pid = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid)) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its process still runs
    Run(absl::StrCat(NetnsLab::IpBinary(), " netns del ", name)).IgnoreError();
    std::filesystem::remove_all("/etc/netns/" + name, ec);
  }
}

}  // namespace

std::string NetnsLab::IpBinary() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string NetnsLab::Unsupported() {
  if (geteuid() != 0) return "creating network namespaces needs root (CI runs as root)";
  if (IpBinary().empty()) return "iproute2's `ip` is not installed (scripts/setup.sh installs it)";
  return "";
}

NetnsLab::~NetnsLab() {
  const std::string ip = IpBinary();
  for (const std::string& name : names_) {
    Run(absl::StrCat(ip, " netns del ", name)).IgnoreError();
  }
  std::error_code ec;
  for (const std::string& dir : etc_dirs_) std::filesystem::remove_all(dir, ec);
}

std::string NetnsLab::ip(int host) const { return absl::StrCat(kSubnet, 10 + host); }

std::vector<std::string> NetnsLab::Exec(int host) const {
  return {IpBinary(), "netns", "exec", names_[host]};
}

absl::Status NetnsLab::Create(int hosts) {
  if (std::string why = Unsupported(); !why.empty()) return absl::UnavailableError(why);
  DeleteStale();
  const std::string ip = IpBinary();
  for (int i = 0; i < hosts; ++i) {
    const std::string name = absl::StrCat(kPrefix, getpid(), "-", i);
    if (absl::Status s = Run(absl::StrCat(ip, " netns add ", name)); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot create network namespaces: ", s.message()));
    }
    names_.push_back(name);
    // The hosts file must exist before the first `ip netns exec` to be
    // bind-mounted over /etc/hosts.
    const std::string dir = "/etc/netns/" + name;
    std::filesystem::create_directories(dir);
    etc_dirs_.push_back(dir);
    std::ofstream(dir + "/hosts") << "127.0.0.1 localhost\n";
    // Names come from /etc/hosts alone, with every address a name has.
    std::ofstream(dir + "/host.conf") << "multi on\n";
    std::ofstream(dir + "/nsswitch.conf") << "hosts: files\n";
  }
  const std::string& hub = names_[0];
  const std::string in_hub = absl::StrCat(ip, " -n ", hub);
  std::vector<std::string> commands = {
      absl::StrCat(in_hub, " link add br0 type bridge"),
      absl::StrCat(in_hub, " link set br0 up"),
      absl::StrCat(in_hub, " addr add ", this->ip(0), "/24 dev br0"),
      absl::StrCat(in_hub, " link set lo up"),
  };
  for (int i = 1; i < hosts; ++i) {
    const std::string in_host = absl::StrCat(ip, " -n ", names_[i]);
    commands.push_back(
        absl::StrCat(in_hub, " link add vh", i, " type veth peer name eth0 netns ", names_[i]));
    commands.push_back(absl::StrCat(in_hub, " link set vh", i, " master br0 up"));
    commands.push_back(absl::StrCat(in_host, " addr add ", this->ip(i), "/24 dev eth0"));
    commands.push_back(absl::StrCat(in_host, " link set eth0 up"));
    commands.push_back(absl::StrCat(in_host, " link set lo up"));
  }
  for (const std::string& command : commands) {
    if (absl::Status s = Run(command); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status NetnsLab::WriteHosts(int host,
                                  const std::map<std::string, std::vector<std::string>>& names) {
  std::string text = "127.0.0.1 localhost\n";
  for (const auto& [name, addresses] : names) {
    for (const std::string& address : addresses) absl::StrAppend(&text, address, " ", name, "\n");
  }
  // Rewritten in place (same inode), so the bind mount shows the new text.
  std::ofstream out(etc_dirs_[host] + "/hosts", std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + etc_dirs_[host] + "/hosts");
  return absl::OkStatus();
}

absl::Status NetnsLab::Enter(int host) const {
  const std::string path = "/var/run/netns/" + names_[host];
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("cannot open " + path);
  const int rc = setns(fd, CLONE_NEWNET);
  close(fd);
  if (rc != 0) return absl::InternalError("setns into " + names_[host] + " failed");
  return absl::OkStatus();
}

}  // namespace jamba::testing
