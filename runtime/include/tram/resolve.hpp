// Host name resolution, off the loop thread.
#pragma once

#include <tram/address.hpp>
#include <tram/task.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tram {

/// What `resolve` asks getaddrinfo for.
struct resolve_options {
    /// AF_UNSPEC (both), AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// SOCK_STREAM (one address per host address) or SOCK_DGRAM.
    int socket_type = SOCK_STREAM;
};

/// The addresses of `host` with `port`, in getaddrinfo's order of preference.
///
/// io_uring has no name resolution, and getaddrinfo blocks (files, DNS, NSS modules), so it
/// never runs on the loop thread: a numeric host ("127.0.0.1", "::1") is parsed in place, and
/// any other goes to `default_blocking_pool()`, whose answer comes back through the ring (see
/// blocking_pool.hpp): the loop sleeps in io_uring_enter as usual, the wait counts as an
/// operation in flight, and a stop request ends it at once (ECANCELED) while the lookup
/// finishes on its own.
///
/// Errors throw tram::error naming the host: "resolve nosuch.example:80: Name or service not
/// known (ENOENT)" (EAI_NONAME and EAI_NODATA map to ENOENT, EAI_AGAIN to EAGAIN, EAI_MEMORY
/// to ENOMEM, EAI_FAMILY to EAFNOSUPPORT, EAI_SYSTEM to its errno, others to EINVAL).
[[nodiscard]] task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                                        resolve_options options = {});

} // namespace tram
