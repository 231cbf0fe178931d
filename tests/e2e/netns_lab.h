// NetnsLab: hosts on one machine for multi-host tests. Each host is a Linux
// network namespace with one veth interface on a private /24; the first
// host also holds the bridge joining them all, so it reaches every other
// host (and they reach it and each other). Names carry this process's pid;
// the destructor kills nothing but deletes the namespaces and their
// /etc/netns files, and Create first deletes ones left by dead processes.
// Needs root and iproute2's `ip`. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace jamba::testing {

class NetnsLab {
 public:
  NetnsLab() = default;
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;
  ~NetnsLab();

  // The `ip` binary, or "" when there is none.
  static std::string IpBinary();
  // Why namespaces cannot be made here (not root, no `ip`), or "" if they can.
  static std::string Unsupported();

  // Creates `hosts` namespaces; host 0 holds the bridge.
  absl::Status Create(int hosts);
  const std::string& name(int host) const { return names_[host]; }
  // Host i's IPv4 address.
  std::string ip(int host) const;
  // argv prefix that runs a program in host i's namespace.
  std::vector<std::string> Exec(int host) const;
  // Writes host i's /etc/hosts (seen by programs started with Exec; later
  // writes are seen at once): each name resolves to its addresses.
  absl::Status WriteHosts(int host, const std::map<std::string, std::vector<std::string>>& names);
  // Moves the calling thread (and the threads it starts later) into host
  // i's namespace.
  absl::Status Enter(int host) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::string> etc_dirs_;
};

}  // namespace jamba::testing
