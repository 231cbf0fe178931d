// gRPC settings shared by our internal hops (router <-> workers): message
// size limits (serving-conventions 1.6), keepalive (1.5), and the load
// balancing that lets one target name many replicas (1.11): clients use
// round_robin over every address the target resolves to, skipping replicas
// whose health service reports NOT_SERVING, and servers age connections so
// that clients re-resolve and find new replicas. Thread-safe.
#pragma once

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

namespace jamba::rpc {

// Largest message either side accepts; a step's rows for one shard fit.
inline constexpr int kMaxMessageBytes = 256 << 20;
// Clients ping idle connections this often; servers accept pings this often.
inline constexpr int kKeepaliveTimeMs = 30'000;
inline constexpr int kKeepaliveTimeoutMs = 10'000;
// Servers send GOAWAY to a connection this old (gRPC adds +-10% jitter);
// the client then re-resolves its target. Calls in flight, such as a
// long-lived Compute stream, are not cut: the grace period is unlimited.
inline constexpr int kMaxConnectionAgeMs = 120'000;
// Clients retry a lost connection at most this long after the last try.
inline constexpr int kMaxReconnectBackoffMs = 1'000;
// The health service that client-side health checking watches on workers.
inline constexpr char kExpertHealthService[] = "jamba.internal.v1.ExpertService";
// The same for mixer workers.
inline constexpr char kMixerHealthService[] = "jamba.internal.v1.MixerService";

// Channel arguments for internal clients: receive limit, keepalive, and a
// service config with round_robin and client-side health checking (a
// dns:///name:port target with several A records spreads new calls over
// the healthy ones; a host:port target behaves as one address).
// `health_service` is the service name whose health is checked.
grpc::ChannelArguments InternalChannelArguments(const char* health_service = kExpertHealthService);
// Receive limit, keepalive acceptance and connection age for internal
// servers.
void ConfigureInternalServer(grpc::ServerBuilder* builder,
                             int max_connection_age_ms = kMaxConnectionAgeMs);

}  // namespace jamba::rpc
