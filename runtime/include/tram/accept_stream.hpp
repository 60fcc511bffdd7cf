// Listening sockets: accept one connection, or a stream of them from one multishot accept,
// as plain descriptors or straight into the ring's registered file table (direct_stream).
#pragma once

#include <tram/address.hpp>
#include <tram/descriptor.hpp>
#include <tram/direct_stream.hpp>
#include <tram/driver.hpp>
#include <tram/multishot.hpp>
#include <tram/socket.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <optional>
#include <type_traits>
#include <utility>

namespace tram {

/// How a listener binds and listens.
struct listen_options {
    /// listen(2)'s backlog: connections the kernel completes and queues before an accept.
    int backlog = SOMAXCONN;
    /// SO_REUSEADDR (IP only): bind again at once to a port whose old connections linger.
    bool reuse_address = true;
    /// SO_REUSEPORT (IP only): several listeners on one port, the kernel spreading connections
    /// over them (one listener per thread).
    bool reuse_port = false;
};

namespace detail {

/// socket(2), the options, bind(2) and listen(2): plain system calls, none of which blocks
/// (IORING_OP_BIND/LISTEN exist from 6.11, but a round trip through the ring costs more than
/// the call). Errors name the operation and `local`: "bind 127.0.0.1:80: ... (EADDRINUSE)".
[[nodiscard]] descriptor open_listener(int type, const socket_address& local,
                                       const listen_options& options);

/// Whether `Stream` lives in a slot of the registered file table (direct_stream).
template <typename Stream>
inline constexpr bool is_direct_stream = std::is_same_v<Stream, direct_stream>;

/// IORING_OP_ACCEPT of one connection, with the peer's address written into the awaiter; for
/// a direct_stream into a slot of the file table the kernel picks (IORING_FILE_INDEX_ALLOC).
template <typename Stream>
class accept_operation final : public checked_awaiter<accept_operation<Stream>> {
public:
    explicit accept_operation(const socket& listener) noexcept
        : listener_(&listener) {}
    accept_operation(accept_operation&& other) noexcept
        : checked_awaiter<accept_operation>(std::move(other))
        , listener_(other.listener_) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        *peer_.size_ptr() = socket_address::capacity();
        if constexpr (is_direct_stream<Stream>) {
            // No SOCK_CLOEXEC: the kernel refuses it with a slot (EINVAL), and a direct
            // descriptor is no descriptor of the process anyway.
            prep_accept_direct(sqe, listener_->fd(), peer_.data(), peer_.size_ptr(), 0,
                               alloc_file_index);
        } else {
            prep_accept(sqe, listener_->fd(), peer_.data(), peer_.size_ptr(), SOCK_CLOEXEC);
        }
    }
    [[noreturn]] void fail(int errnum) const {
        if constexpr (is_direct_stream<Stream>) {
            throw_direct_accept_error(this->driver(), errnum, *listener_);
        } else {
            throw_socket_error(errnum, "accept", *listener_);
        }
    }
    [[nodiscard]] Stream value_of(io_result r) noexcept {
        if constexpr (is_direct_stream<Stream>) {
            return Stream(this->driver(), static_cast<unsigned>(r.value()), peer_);
        } else {
            return Stream(descriptor(static_cast<int>(r.value())), peer_);
        }
    }

private:
    const socket* listener_;
    socket_address peer_;
};

} // namespace detail

/// The connections of one listener, from a single multishot accept (IORING_ACCEPT_MULTISHOT,
/// 5.19): one SQE, then one CQE per connection, with no system call or SQE per accept.
///
/// Armed when constructed. `co_await next()` gives the next connection (a `Stream`, whose
/// error messages name its peer, looked up only when an error occurs). When the kernel ends
/// the accept (a CQE without IORING_CQE_F_MORE), connections already queued still come first;
/// then a full completion queue's last connection is simply handed over, while an error is
/// thrown from `next()` (tram::error "accept 0.0.0.0:8080: Too many open files (EMFILE)");
/// either way the following `next()` arms the accept again. So a full descriptor table never
/// turns into a busy loop, and the caller decides what to do: the kernel says nothing when a
/// descriptor frees, and an accept armed while the table is full fails at once, so a server
/// that goes on waits a little (`sleep_for`) before its next `next()`; meanwhile new clients
/// wait in the listen backlog, and the connections it has are served as before. (The kernel
/// reads RLIMIT_NOFILE when the accept is armed.) The stream ends only when cancelled
/// (`cancel()`, or a stop request on the coroutine awaiting `next()`): `next()` then throws
/// ECANCELED once the kernel has confirmed. Destroying the stream while armed is safe: the
/// accept is cancelled and connections that arrive meanwhile are closed (see multishot.hpp).
///
/// With `Stream` = direct_stream (`incoming_direct()`, 5.19) every connection goes straight
/// into a free slot of the driver's registered file table (IORING_FILE_INDEX_ALLOC), which
/// must exist (see direct_stream): without one, `next()` throws ENXIO "accept ADDR: no
/// registered file table (...)"; a full table ends the accept like a full descriptor table
/// (ENFILE, "the registered file table is full"), and it re-arms the same way, except that the
/// connection which met the full table is lost (the kernel accepts before it looks for a slot,
/// then closes it). Unclaimed connections free their slots through the ring.
///
/// The listener must outlive the stream and stay where it is.
template <typename Stream>
class accept_stream {
    struct accept_op {
        int listener_fd;
        driver* owner; // for direct streams: whose file table the slots are in
        void prepare(io_uring_sqe& sqe) const noexcept {
            if constexpr (detail::is_direct_stream<Stream>) {
                prep_multishot_accept_direct(sqe, listener_fd); // no SOCK_CLOEXEC with slots
            } else {
                prep_multishot_accept(sqe, listener_fd, SOCK_CLOEXEC);
            }
        }
        // A connection nobody will take: close it (a fresh socket's close never blocks; a
        // slot's goes through the ring).
        void discard(const completion& c) const noexcept {
            if (c.result < 0) return;
            if constexpr (detail::is_direct_stream<Stream>) {
                direct_stream(*owner, static_cast<unsigned>(c.result)).reset();
            } else {
                ::close(c.result);
            }
        }
    };

public:
    explicit accept_stream(const socket& listener)
        : accept_(accept_op{listener.fd(), current_driver()})
        , listener_(&listener) {
        assert(accept_.op().owner != nullptr && "an accept stream needs a running tram::driver");
        accept_.start(*accept_.op().owner);
    }

    class next_awaiter {
    public:
        explicit next_awaiter(accept_stream& s) noexcept
            : inner_(s.accept_.core(), true)
            , s_(&s) {}
        [[nodiscard]] bool await_ready() const noexcept { return inner_.await_ready(); }
        template <typename Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return inner_.await_suspend(h);
        }
        Stream await_resume() { return s_->take(inner_.await_resume()); }

    private:
        detail::multishot_core::next_awaiter inner_;
        accept_stream* s_;
    };

    /// `co_await next()`: the next connection (see the class comment for errors and the end).
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter(*this); }
    /// Stops accepting: the kernel cancels the accept, and `next()` delivers the connections
    /// that came before, then throws ECANCELED.
    void cancel() noexcept { accept_.cancel(); }
    /// How many times the multishot op was armed (1 + re-arms after the kernel ended it).
    [[nodiscard]] std::uint64_t arms() const noexcept { return accept_.arms(); }
    /// Connections (or errors) received and not yet taken.
    [[nodiscard]] std::size_t queued() const noexcept { return accept_.queued(); }

private:
    Stream take(std::optional<completion> c) {
        if (!c) detail::throw_socket_error(ECANCELED, "accept", *listener_);
        if (c->result < 0) {
            const bool cancelled = accept_.core().cancel_requested() &&
                                   (c->result == -ECANCELED || c->result == -EINTR);
            const int errnum = cancelled ? ECANCELED : -c->result;
            if constexpr (detail::is_direct_stream<Stream>) {
                detail::throw_direct_accept_error(*accept_.op().owner, errnum, *listener_);
            } else {
                detail::throw_socket_error(errnum, "accept", *listener_);
            }
        }
        if constexpr (detail::is_direct_stream<Stream>) {
            return Stream(*accept_.op().owner, static_cast<unsigned>(c->result));
        } else {
            return Stream(descriptor(c->result), socket_address{});
        }
    }

    multishot<accept_op> accept_;
    const socket* listener_;
};

/// A listening socket that accepts `Stream`s (tcp_stream, unix_stream).
template <typename Stream>
class basic_listener : public socket {
public:
    using socket::socket;

    /// Accepts one connection (IORING_OP_ACCEPT), whose peer address comes with it.
    [[nodiscard]] detail::accept_operation<Stream> accept() const noexcept {
        return detail::accept_operation<Stream>(*this);
    }
    /// The stream of connections from one multishot accept (see accept_stream).
    [[nodiscard]] accept_stream<Stream> incoming() const { return accept_stream<Stream>(*this); }

    /// Accepts one connection straight into a free slot of the driver's registered file table
    /// (IORING_OP_ACCEPT with IORING_FILE_INDEX_ALLOC, 5.19), whose peer address comes with it.
    /// The table must exist (`registrar::register_files_sparse`; see direct_stream).
    [[nodiscard]] detail::accept_operation<direct_stream> accept_direct() const noexcept {
        return detail::accept_operation<direct_stream>(*this);
    }
    /// The stream of connections from one multishot accept into free slots of the file table
    /// (5.19; see accept_stream and direct_stream).
    [[nodiscard]] accept_stream<direct_stream> incoming_direct() const {
        return accept_stream<direct_stream>(*this);
    }
};

} // namespace tram
