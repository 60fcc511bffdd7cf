// TCP over IPv4 and IPv6: connected streams and listeners.
#pragma once

#include <tram/accept_stream.hpp>
#include <tram/address.hpp>
#include <tram/socket.hpp>
#include <tram/task.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <chrono>

namespace tram {

/// A TCP connection: the I/O of `stream_socket` (send/recv, send_all/recv_exact,
/// sendmsg/recvmsg, send_zc, shutdown, close) and TCP's options.
class tcp_stream : public stream_socket {
public:
    tcp_stream() noexcept = default;
    /// Adopts a connected descriptor; `peer` is what error messages name (empty: looked up
    /// when an error occurs).
    explicit tcp_stream(descriptor fd, socket_address peer = {}) noexcept
        : stream_socket(std::move(fd), std::move(peer)) {}

    /// Connects to `to` (IORING_OP_CONNECT on a socket from socket(2)). With a `timeout`, a
    /// linked IORING_OP_LINK_TIMEOUT gives up after it: tram::error with ETIME. Errors name
    /// the address: "connect 127.0.0.1:1: Connection refused (ECONNREFUSED)".
    [[nodiscard]] static task<tcp_stream> connect(socket_address to,
                                                  std::chrono::nanoseconds timeout = {}) {
        descriptor fd = co_await detail::connect_socket(SOCK_STREAM, to, timeout);
        co_return tcp_stream(std::move(fd), std::move(to));
    }

    /// TCP_NODELAY: send small segments at once instead of coalescing them (Nagle).
    void set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on, "TCP_NODELAY"); }
    [[nodiscard]] bool nodelay() const { return option(IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"); }
};

/// A listening TCP socket.
class tcp_listener : public basic_listener<tcp_stream> {
public:
    tcp_listener() noexcept = default;

    /// Binds to `local` (port 0: the kernel picks one; `local_address()` or `name()` tells
    /// which) and listens. IPv6 listeners accept IPv4 too unless net.ipv6.bindv6only is set.
    [[nodiscard]] static tcp_listener bind(const socket_address& local,
                                           const listen_options& options = {}) {
        tcp_listener l(detail::open_listener(SOCK_STREAM, local, options));
        l.name_ = l.local_address();
        return l;
    }

private:
    explicit tcp_listener(descriptor fd) noexcept
        : basic_listener(std::move(fd)) {}
};

} // namespace tram
