// What every socket has (an owned descriptor, the address its errors name, options, close),
// and the I/O of connected streams and of datagram sockets, shared (as `detail::basic_stream`)
// with the direct descriptors of direct_stream.hpp.
#pragma once

#include <tram/address.hpp>
#include <tram/descriptor.hpp>
#include <tram/error.hpp>
#include <tram/io_result.hpp>
#include <tram/operation.hpp>
#include <tram/recv_chunk.hpp>
#include <tram/registered.hpp>
#include <tram/sqe.hpp>
#include <tram/task.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

namespace tram {

class socket;

namespace detail {

/// What a socket operation's errors name: anything with `describe()` (a socket, a
/// direct_stream), asked only when an error is thrown. Two pointers; the owner must outlive it.
class error_subject {
public:
    // Implicit, so that a socket passes where an error_subject is asked for. (A copy picks
    // the copy constructor: a non-template wins a tie.)
    template <typename Owner>
    error_subject(const Owner& owner) noexcept // NOLINT(google-explicit-constructor)
        : owner_(&owner)
        , describe_([](const void* p) { return static_cast<const Owner*>(p)->describe(); }) {}

    [[nodiscard]] std::string describe() const { return describe_(owner_); }

private:
    const void* owner_;
    std::string (*describe_)(const void*);
};

/// Throws tram::error "operation SUBJECT: cause (ENAME)", SUBJECT being `s.describe()`, e.g.
/// "recv 127.0.0.1:8080: Connection reset by peer (ECONNRESET)".
[[noreturn]] void throw_socket_error(int errnum, std::string_view operation, error_subject s);
/// Throws tram::error "operation ADDRESS: cause (ENAME)".
[[noreturn]] void throw_address_error(int errnum, std::string_view operation,
                                      const socket_address& address);
/// Throws tram::error with ENODATA: "operation SUBJECT: end of file after N of M bytes".
[[noreturn]] void throw_socket_eof(std::string_view operation, error_subject s, std::size_t done,
                                   std::size_t wanted);

/// socket(2) with SOCK_CLOEXEC. A plain system call, not IORING_OP_SOCKET: creating a socket
/// never blocks, and one syscall costs less than a round trip through the ring (and works on
/// every kernel). Errors name `operation` and `address` ("connect [::1]:80: ... (EAFNOSUPPORT)").
[[nodiscard]] descriptor open_socket(int family, int type, std::string_view operation,
                                     const socket_address& address);
/// A socket of `type` connected to `to` through IORING_OP_CONNECT; `timeout` (if > 0) links an
/// IORING_OP_LINK_TIMEOUT, so a peer that never answers ends it with ETIME.
[[nodiscard]] task<descriptor> connect_socket(int type, socket_address to,
                                              std::chrono::nanoseconds timeout);

/// One SQE on a socket, prepared by `prep`; errors name `operation` and the socket (`Owner`, a
/// socket or a direct_stream: anything with `describe()`). Gives the byte count when `Counts`,
/// else nothing. Holds two pointers and the lambda: no allocation.
template <typename Prep, bool Counts, typename Owner = socket>
class socket_operation final : public checked_awaiter<socket_operation<Prep, Counts, Owner>> {
public:
    socket_operation(Prep prep, const char* operation, const Owner& s) noexcept
        : prep_(std::move(prep))
        , operation_(operation)
        , socket_(&s) {}

    void prepare(io_uring_sqe& sqe) noexcept { prep_(sqe); }
    [[noreturn]] void fail(int errnum) const { throw_socket_error(errnum, operation_, *socket_); }
    auto value_of(io_result r) const noexcept {
        if constexpr (Counts) return std::size_t{r.value()};
    }

private:
    Prep prep_;
    const char* operation_;
    const Owner* socket_;
};

template <bool Counts, typename Owner, typename Prep>
[[nodiscard]] socket_operation<Prep, Counts, Owner> socket_op(const char* operation, const Owner& s,
                                                              Prep prep) noexcept {
    return {std::move(prep), operation, s};
}

/// `basic_stream::send_all` and `recv_exact` of any stream: the loops, out of line.
[[nodiscard]] task<> send_all(file_ref file, error_subject subject,
                              std::span<const std::byte> data);
[[nodiscard]] task<> recv_exact(file_ref file, error_subject subject, std::span<std::byte> buf);

/// The state of `basic_stream::send_then_recv`: a send of the whole reply (MSG_WAITALL)
/// linked (IOSQE_IO_LINK) to a recv, both in one batch, the send's CQE skipped when it
/// succeeds (IOSQE_CQE_SKIP_SUCCESS). So an exchange costs the driver one CQE, hence at most
/// one io_uring_enter, and the reply's memory is free again once the recv's CQE is in,
/// because the link starts the recv only after the send has finished.
///
/// A send that fails or comes up short posts its CQE and breaks the link; the kernel then
/// fails the recv without posting a CQE for it (the head skipped its success CQE, so the
/// link's cancellations are skipped too: REQ_F_SKIP_LINK_CQES). So each round ends with
/// exactly one CQE: the send's when it failed or was short (the recv never ran), else the
/// recv's. A short send goes on with the rest, linked to a new recv; a failed one ends the
/// operation with the send's error. A reply longer than one send moves
/// (max_transfer) goes out in plain sends first.
///
/// Cancellation (a stop request on the awaiting coroutine) cancels both requests and resumes
/// only after the last CQE of the round; part of the reply may have been sent by then.
class send_then_recv_base : public operation_base {
public:
    send_then_recv_base(file_ref file, error_subject subject, std::span<const std::byte> reply,
                        std::span<std::byte> buf, int buf_group) noexcept
        : operation_base(&on_complete, &on_start, &on_cancel)
        , file_(file)
        , subject_(subject)
        , reply_(reply)
        , buf_(buf)
        , buf_group_(buf_group) {}
    send_then_recv_base(send_then_recv_base&& other) noexcept
        : send_then_recv_base(other.file_, other.subject_, other.reply_, other.buf_,
                              other.buf_group_) {}
    ~send_then_recv_base();

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        return suspend(waiter, stop_token_of(waiter));
    }

protected:
    /// Ends a resumed operation: throws the send's error or the recv's, else gives the recv's
    /// CQE (result >= 0, flags with the buffer id of a provided buffer).
    [[nodiscard]] completion finish();
    /// The recv's CQE as it came, before `finish` judges it.
    [[nodiscard]] const completion& recv_completion() const noexcept { return recv_; }

private:
    enum class state : unsigned char { idle, waiting_slot, in_flight, completed };
    struct canceller {
        send_then_recv_base* self;
        void operator()() const noexcept { self->request_cancel(); }
    };

    bool suspend(std::coroutine_handle<> waiter, std::stop_token token);
    void submit();
    void request_cancel() noexcept;
    void cancel_here() noexcept;
    void complete() noexcept;
    void next_round() noexcept;
    void on_send(const completion& c) noexcept;
    void on_recv(const completion& c) noexcept;
    static void on_complete(operation_base& base, const completion& c) noexcept;
    static void on_start(operation_base& base) noexcept;
    static void on_cancel(operation_base& base) noexcept;

    file_ref file_;
    error_subject subject_;
    std::span<const std::byte> reply_;
    std::span<std::byte> buf_;
    int buf_group_; // < 0: recv into buf_
    std::size_t sent_ = 0;
    tram::driver* driver_ = nullptr;
    std::coroutine_handle<> waiter_;
    std::optional<std::stop_callback<canceller>> stop_callback_;
    std::atomic<bool> remote_cancel_posted_{false};
    completion recv_{};
    int send_error_ = 0;
    state state_ = state::idle;
    bool send_alone_ = false; // this round is a lone send (no recv linked)
    bool cancel_requested_ = false;
};

/// `send_then_recv` into the caller's buffer: gives the count received (0 at end of stream).
class send_then_recv_operation final : public send_then_recv_base {
public:
    using send_then_recv_base::send_then_recv_base;
    std::size_t await_resume() { return static_cast<std::size_t>(finish().result); }
};

/// `send_then_recv` into a provided buffer: gives a `recv_chunk` that owns it (empty at end of
/// stream).
class send_then_recv_select_operation final : public send_then_recv_base {
public:
    send_then_recv_select_operation(file_ref file, error_subject subject,
                                    std::span<const std::byte> reply, buffer_ring& ring) noexcept
        : send_then_recv_base(file, subject, reply, {}, ring.group_id())
        , ring_(&ring) {}
    send_then_recv_select_operation(send_then_recv_select_operation&& other) noexcept
        : send_then_recv_base(std::move(other))
        , ring_(other.ring_) {}
    recv_chunk await_resume();

private:
    buffer_ring* ring_;
};

/// The I/O of a connected socket, for a plain descriptor (`stream_socket`, `datagram_socket`)
/// and a slot of the ring's registered file table (`direct_stream`) alike, as `basic_file` is
/// for files. `Derived` provides `ref_impl()` (the file_ref its SQEs name: a registered one
/// sets IOSQE_FIXED_FILE) and `describe()` (what its errors name). Sends pass MSG_NOSIGNAL.
template <typename Derived>
class basic_socket_io {
public:
    /// Sends up to `buf.size()` bytes; gives the count sent.
    [[nodiscard]] auto send(std::span<const std::byte> buf, int flags = 0) const noexcept {
        return socket_op<true>("send", derived(),
                               [f = ref(), buf, flags](io_uring_sqe& sqe) noexcept {
                                   prep_send(sqe, f, clamp_transfer(buf), flags | send_flags);
                               });
    }
    /// Receives up to `buf.size()` bytes; gives the count, 0 at end of stream.
    [[nodiscard]] auto recv(std::span<std::byte> buf, int flags = 0) const noexcept {
        return socket_op<true>("recv", derived(),
                               [f = ref(), buf, flags](io_uring_sqe& sqe) noexcept {
                                   prep_recv(sqe, f, clamp_transfer(buf), flags);
                               });
    }
    /// sendmsg(2): `msg` (and what it points to) must outlive the co_await.
    [[nodiscard]] auto sendmsg(const msghdr& msg, int flags = 0) const noexcept {
        return socket_op<true>("sendmsg", derived(),
                               [f = ref(), m = &msg, flags](io_uring_sqe& sqe) noexcept {
                                   prep_sendmsg(sqe, f, m, flags | send_flags);
                               });
    }
    /// recvmsg(2): the kernel updates msg_namelen, msg_controllen and msg_flags of `msg`.
    [[nodiscard]] auto recvmsg(msghdr& msg, int flags = 0) const noexcept {
        return socket_op<true>("recvmsg", derived(),
                               [f = ref(), m = &msg, flags](io_uring_sqe& sqe) noexcept {
                                   prep_recvmsg(sqe, f, m, flags);
                               });
    }

    /// The descriptor or registered-file slot that SQEs name.
    [[nodiscard]] file_ref ref() const noexcept { return derived().ref_impl(); }

protected:
    static constexpr int send_flags = MSG_NOSIGNAL;

    basic_socket_io() noexcept = default;

    [[nodiscard]] const Derived& derived() const noexcept {
        return static_cast<const Derived&>(*this);
    }
};

/// What every connected byte stream can do, for a plain descriptor (`stream_socket`: TCP, Unix
/// stream) and a direct descriptor (`direct_stream`) alike: the I/O of `basic_socket_io` plus
/// whole-buffer sends and receives, zero-copy sends, linked send-then-recv and shutdown.
template <typename Derived>
class basic_stream : public basic_socket_io<Derived> {
    using base = basic_socket_io<Derived>;

public:
    using base::recv;

    /// Sends all of `data`: one SQE with MSG_WAITALL (the kernel retries short sends itself),
    /// more only if the kernel still returns short.
    [[nodiscard]] task<> send_all(std::span<const std::byte> data) const {
        return detail::send_all(this->ref(), this->derived(), data);
    }
    /// Receives exactly `buf.size()` bytes, the same way. End of stream first throws tram::error
    /// with ENODATA: "recv_exact 127.0.0.1:80: end of file after N of M bytes".
    [[nodiscard]] task<> recv_exact(std::span<std::byte> buf) const {
        return detail::recv_exact(this->ref(), this->derived(), buf);
    }

    /// IORING_OP_SEND_ZC (6.0): sends without copying `buf` into the kernel. The kernel posts
    /// two CQEs, the result and then a notification when it no longer reads `buf`; the
    /// co_await resumes only after both, so `buf` may be reused as soon as it returns. Gives
    /// the count sent. Pays off for large buffers (tens of KiB and up); on loopback the
    /// kernel copies anyway.
    [[nodiscard]] auto send_zc(std::span<const std::byte> buf, int flags = 0) const noexcept {
        return socket_op<true>(
            "send_zc", this->derived(), [f = this->ref(), buf, flags](io_uring_sqe& sqe) noexcept {
                prep_send_zc(sqe, f, clamp_transfer(buf), flags | base::send_flags);
            });
    }
    /// The same from a buffer registered with the driver's ring (IORING_RECVSEND_FIXED_BUF and
    /// its buf_index: the kernel skips pinning the pages for each send). The only socket op
    /// that takes a registered buffer: the kernel has no fixed-buffer send or recv otherwise.
    [[nodiscard]] auto send_zc(registered_buffer buf, int flags = 0) const noexcept {
        return socket_op<true>(
            "send_zc", this->derived(), [f = this->ref(), buf, flags](io_uring_sqe& sqe) noexcept {
                prep_send_zc(sqe, f, clamp_transfer(buf), flags | base::send_flags);
            });
    }
    /// Sends all of `reply`, then receives into `buf`, in one round trip through the ring: the
    /// send (MSG_WAITALL) is linked to the recv and its CQE skipped when it succeeds, so a
    /// request/response loop costs one CQE and at most one io_uring_enter per exchange. Gives
    /// the count received, 0 at end of stream. `reply` may overlap `buf` (the recv starts
    /// only once the send is done). A short send goes on with the rest before the recv; a
    /// failed one throws tram::error "send PEER: ..." (the recv never ran). A stop request
    /// ends it with ECANCELED once the kernel has answered; part of `reply` may have gone.
    [[nodiscard]] send_then_recv_operation send_then_recv(std::span<const std::byte> reply,
                                                          std::span<std::byte> buf) const noexcept {
        return {this->ref(), this->derived(), reply, buf, -1};
    }
    /// The same, receiving into a buffer the kernel picks from `ring` (IOSQE_BUFFER_SELECT):
    /// gives a `recv_chunk` that owns it, empty at end of stream. The usual echo loop
    /// `chunk = co_await s.send_then_recv(chunk.bytes(), ring)` gives the old buffer back only
    /// after the new one arrived, which is when the kernel is done sending from it. A ring
    /// with no buffer left ends it with tram::error ENOBUFS "recv PEER: ..." after the reply
    /// was sent: give buffers back and `recv` again. `ring` must outlive the co_await.
    [[nodiscard]] send_then_recv_select_operation send_then_recv(std::span<const std::byte> reply,
                                                                 buffer_ring& ring) const noexcept {
        return {this->ref(), this->derived(), reply, ring};
    }
    /// Receives once into a buffer the kernel picks from `ring` (the first recv of a
    /// `send_then_recv` loop): a `recv_chunk`, empty at end of stream; ENOBUFS as above.
    [[nodiscard]] send_then_recv_select_operation recv(buffer_ring& ring) const noexcept {
        return {this->ref(), this->derived(), {}, ring};
    }

    /// shutdown(2) through the ring: SHUT_WR sends FIN (the peer's recv gives 0), SHUT_RD,
    /// SHUT_RDWR.
    [[nodiscard]] auto shutdown(int how = SHUT_WR) const noexcept {
        return socket_op<false>(
            "shutdown", this->derived(),
            [f = this->ref(), how](io_uring_sqe& sqe) noexcept { prep_shutdown(sqe, f, how); });
    }

protected:
    basic_stream() noexcept = default;
};

} // namespace detail

/// A datagram received by `recv_from`: its size, its sender, and whether it was cut short
/// because the buffer was smaller (MSG_TRUNC).
struct datagram {
    std::size_t size = 0;
    socket_address from;
    bool truncated = false;
};

/// An owned socket descriptor and the address its error messages name (the peer of a
/// connected socket, the local address of a bound one). The base of every socket type,
/// listeners included; the I/O comes with `stream_socket` and `datagram_socket` (from
/// `detail::basic_socket_io`, which `direct_stream` shares).
///
/// Operations return awaitables that must be awaited while the socket lives and stays where
/// it is (do not move a socket with an operation in flight); buffers must stay valid until the
/// co_await has finished, also when it is cancelled. Failures throw tram::error naming the
/// operation and the address (see the README's error model); a stop request on the awaiting
/// coroutine ends an operation with ECANCELED, a `.with_timeout(d)` with ETIME. Sends pass
/// MSG_NOSIGNAL: a reset peer is an EPIPE/ECONNRESET error, never a SIGPIPE.
///
/// Options and addresses are plain system calls on the loop thread (setsockopt and
/// getsockname never block).
class socket {
public:
    socket() noexcept = default;
    explicit socket(descriptor fd, socket_address name = {}) noexcept
        : fd_(std::move(fd))
        , name_(std::move(name)) {}

    [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
    [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
    /// Gives up ownership of the descriptor without closing it.
    [[nodiscard]] int release() noexcept { return fd_.release(); }
    /// The address error messages name (may be empty).
    [[nodiscard]] const socket_address& name() const noexcept { return name_; }
    /// What error messages call this socket: `name()`, else its peer or local address as the
    /// kernel reports it, else "fd N". Builds a string: for error paths.
    [[nodiscard]] std::string describe() const;

    /// Closes through the ring and reports errors (tram::error naming the socket). The socket
    /// counts as closed from the moment this is called. Without it, the destructor closes
    /// without waiting (descriptor).
    [[nodiscard]] auto close() noexcept {
        return detail::socket_op<false>(
            "close", *this,
            [fd = fd_.release()](io_uring_sqe& sqe) noexcept { prep_close(sqe, fd); });
    }

    /// setsockopt(level, option, int).
    void set_option(int level, int option, int value, std::string_view option_name = "option");
    /// getsockopt(level, option) of an int.
    [[nodiscard]] int option(int level, int option, std::string_view option_name = "option") const;
    /// SO_KEEPALIVE.
    void set_keepalive(bool on) { set_option(SOL_SOCKET, SO_KEEPALIVE, on, "SO_KEEPALIVE"); }
    [[nodiscard]] bool keepalive() const {
        return option(SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
    }
    /// SO_SNDBUF / SO_RCVBUF (the kernel doubles what is set, and reports the doubled value).
    void set_send_buffer_size(int bytes) { set_option(SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF"); }
    void set_receive_buffer_size(int bytes) {
        set_option(SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
    }
    [[nodiscard]] int send_buffer_size() const {
        return option(SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF");
    }
    [[nodiscard]] int receive_buffer_size() const {
        return option(SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
    }
    /// getsockname(2) / getpeername(2).
    [[nodiscard]] socket_address local_address() const;
    [[nodiscard]] socket_address peer_address() const;

protected:
    descriptor fd_;
    socket_address name_;
};

namespace detail {

/// sendmsg with a destination address, the msghdr and the address kept in the awaiter.
class send_to_operation final : public checked_awaiter<send_to_operation> {
public:
    send_to_operation(int fd, std::span<const std::byte> buf, const socket_address& to) noexcept
        : fd_(fd)
        , to_(to)
        , iov_{const_cast<std::byte*>(buf.data()), buf.size()} {}
    send_to_operation(send_to_operation&& other) noexcept
        : checked_awaiter(std::move(other))
        , fd_(other.fd_)
        , to_(other.to_)
        , iov_(other.iov_) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        msg_ = msghdr{};
        msg_.msg_name = to_.data();
        msg_.msg_namelen = to_.size();
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        prep_sendmsg(sqe, fd_, &msg_, MSG_NOSIGNAL);
    }
    [[noreturn]] void fail(int errnum) const { throw_address_error(errnum, "send_to", to_); }
    [[nodiscard]] std::size_t value_of(io_result r) const noexcept { return r.value(); }

private:
    int fd_;
    socket_address to_;
    iovec iov_;
    msghdr msg_{};
};

/// recvmsg into one buffer, recording the sender.
class recv_from_operation final : public checked_awaiter<recv_from_operation> {
public:
    recv_from_operation(const socket& s, std::span<std::byte> buf) noexcept
        : socket_(&s)
        , iov_{buf.data(), buf.size()} {}
    recv_from_operation(recv_from_operation&& other) noexcept
        : checked_awaiter(std::move(other))
        , socket_(other.socket_)
        , iov_(other.iov_) {}

    void prepare(io_uring_sqe& sqe) noexcept;
    [[noreturn]] void fail(int errnum) const { throw_socket_error(errnum, "recv_from", *socket_); }
    [[nodiscard]] datagram value_of(io_result r) noexcept {
        *from_.size_ptr() = msg_.msg_namelen;
        return {r.value(), from_, (msg_.msg_flags & MSG_TRUNC) != 0};
    }

private:
    const socket* socket_;
    iovec iov_;
    msghdr msg_{};
    socket_address from_;
};

} // namespace detail

/// A connected byte stream (TCP, Unix stream): the I/O of `detail::basic_stream` (send/recv,
/// send_all/recv_exact, sendmsg/recvmsg, send_zc, send_then_recv, shutdown) on an owned
/// descriptor, which `close` closes.
class stream_socket : public socket, public detail::basic_stream<stream_socket> {
public:
    using socket::socket;

private:
    friend class detail::basic_socket_io<stream_socket>;
    [[nodiscard]] file_ref ref_impl() const noexcept { return fd(); }
};

/// A datagram socket (UDP, Unix datagram): datagrams to and from any address, or, after
/// `connect`, to and from one peer with send/recv.
class datagram_socket : public socket, public detail::basic_socket_io<datagram_socket> {
public:
    using socket::socket;

    /// Sets the default peer (connect(2): immediate for datagram sockets, no handshake), and
    /// names it in error messages. Throws tram::error "connect ADDRESS: ...".
    void connect(const socket_address& peer);
    /// Sends one datagram to `to`; gives the count sent.
    [[nodiscard]] detail::send_to_operation send_to(std::span<const std::byte> buf,
                                                    const socket_address& to) const noexcept {
        return {fd(), buf, to};
    }
    /// Receives one datagram into `buf`: its size, sender and whether it was truncated.
    [[nodiscard]] detail::recv_from_operation recv_from(std::span<std::byte> buf) const noexcept {
        return {*this, buf};
    }

protected:
    /// socket(2) of `family` and `type`, bound to `local` unless it is empty.
    static descriptor open_bound(int family, int type, const socket_address& local);

private:
    friend class detail::basic_socket_io<datagram_socket>;
    [[nodiscard]] file_ref ref_impl() const noexcept { return fd(); }
};

} // namespace tram
