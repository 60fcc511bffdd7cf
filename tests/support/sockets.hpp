// Connected kernel objects for tests: socketpairs, pipes, and TCP over 127.0.0.1 loopback only.
#pragma once

#include <tram/unique_fd.hpp>

#include <netinet/in.h>

#include <utility>

namespace tram::test {

/// Two connected descriptors (a socketpair or a pipe's read and write ends).
struct fd_pair {
    unique_fd first;
    unique_fd second;
};

/// socketpair(AF_UNIX, `type` | SOCK_CLOEXEC).
[[nodiscard]] fd_pair make_socketpair(int type);
/// pipe2(O_CLOEXEC | `flags`): first is the read end, second the write end.
[[nodiscard]] fd_pair make_pipe(int flags = 0);

/// A TCP listener bound to 127.0.0.1 on a port the kernel picks.
class loopback_listener {
public:
    explicit loopback_listener(int backlog = 16);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] const sockaddr_in& address() const noexcept { return addr_; }
    [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept {
        return reinterpret_cast<const sockaddr*>(&addr_);
    }

    /// A blocking client socket connected to the listener (the connection waits in the
    /// backlog until accepted).
    [[nodiscard]] unique_fd connect_client() const;
    /// accept4(2), blocking.
    [[nodiscard]] unique_fd accept_blocking() const;

private:
    unique_fd fd_;
    sockaddr_in addr_{};
};

/// A TCP socket (connected client, accepted server) pair over 127.0.0.1.
[[nodiscard]] fd_pair make_tcp_pair();

/// 127.0.0.1 with port 0 (any).
[[nodiscard]] sockaddr_in loopback_any_port() noexcept;

/// Whether `fd` is open.
[[nodiscard]] bool is_open(int fd) noexcept;

} // namespace tram::test
