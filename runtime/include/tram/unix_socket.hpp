// Unix domain sockets: streams, listeners, datagrams and socketpairs.
#pragma once

#include <tram/accept_stream.hpp>
#include <tram/address.hpp>
#include <tram/socket.hpp>
#include <tram/task.hpp>

#include <sys/socket.h>

#include <chrono>
#include <utility>

namespace tram {

namespace detail {
/// socketpair(AF_UNIX, `type` | SOCK_CLOEXEC); throws tram::error "socketpair: ...".
[[nodiscard]] std::pair<descriptor, descriptor> open_socketpair(int type);
} // namespace detail

/// A connected Unix stream socket (the I/O of `stream_socket`).
class unix_stream : public stream_socket {
public:
    unix_stream() noexcept = default;
    explicit unix_stream(descriptor fd, socket_address peer = {}) noexcept
        : stream_socket(std::move(fd), std::move(peer)) {}

    /// Connects to the socket at `to` ("/path" or "@abstract"); `timeout` as tcp_stream's.
    [[nodiscard]] static task<unix_stream> connect(socket_address to,
                                                   std::chrono::nanoseconds timeout = {}) {
        descriptor fd = co_await detail::connect_socket(SOCK_STREAM, to, timeout);
        co_return unix_stream(std::move(fd), std::move(to));
    }
    /// Two connected streams (socketpair(2)).
    [[nodiscard]] static std::pair<unix_stream, unix_stream> pair() {
        auto [a, b] = detail::open_socketpair(SOCK_STREAM);
        return {unix_stream(std::move(a)), unix_stream(std::move(b))};
    }
};

/// A listening Unix stream socket. Binding creates the socket file, which stays after the
/// listener closes (unlink it; abstract names vanish by themselves); binding to a path that
/// exists fails with EADDRINUSE.
class unix_listener : public basic_listener<unix_stream> {
public:
    unix_listener() noexcept = default;

    /// Binds to `local` and listens (`options.backlog`; the reuse options are IP's).
    [[nodiscard]] static unix_listener bind(const socket_address& local,
                                            const listen_options& options = {}) {
        unix_listener l(detail::open_listener(SOCK_STREAM, local, options));
        l.name_ = local;
        return l;
    }

private:
    explicit unix_listener(descriptor fd) noexcept
        : basic_listener(std::move(fd)) {}
};

/// A Unix datagram socket: `send_to`/`recv_from` named sockets, or send/recv after `connect`
/// or from `pair()`. Message boundaries are kept, and delivery is reliable and ordered.
class unix_datagram : public datagram_socket {
public:
    unix_datagram() noexcept = default;
    explicit unix_datagram(descriptor fd, socket_address name = {}) noexcept
        : datagram_socket(std::move(fd), std::move(name)) {}

    /// A socket bound to `local` (creating the socket file, as unix_listener does).
    [[nodiscard]] static unix_datagram bind(const socket_address& local) {
        return unix_datagram(open_bound(AF_UNIX, SOCK_DGRAM, local), local);
    }
    /// An unbound socket, for sending (it cannot be answered unless it binds).
    [[nodiscard]] static unix_datagram open() {
        return unix_datagram(open_bound(AF_UNIX, SOCK_DGRAM, {}));
    }
    /// Two connected datagram sockets (socketpair(2)).
    [[nodiscard]] static std::pair<unix_datagram, unix_datagram> pair() {
        auto [a, b] = detail::open_socketpair(SOCK_DGRAM);
        return {unix_datagram(std::move(a)), unix_datagram(std::move(b))};
    }
};

} // namespace tram
