// The out-of-line parts of sockets: error messages (built only when throwing), socket
// creation, connect, options and addresses, the whole-buffer transfers, send_then_recv, and
// the slot handling of direct streams.
#include <tram/socket.hpp>

#include <tram/accept_stream.hpp>
#include <tram/direct_stream.hpp>
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/unix_socket.hpp>

#include <cassert>
#include <cerrno>
#include <string>

namespace tram {
namespace detail {
namespace {

std::string subject_of(std::string_view operation, std::string_view subject) {
    std::string what(operation);
    if (!subject.empty()) {
        what += ' ';
        what += subject;
    }
    return what;
}

} // namespace

void throw_socket_error(int errnum, std::string_view operation, error_subject s) {
    throw_error(errnum, subject_of(operation, s.describe()));
}

void throw_address_error(int errnum, std::string_view operation, const socket_address& address) {
    throw_error(errnum, subject_of(operation, address.to_string()));
}

void throw_socket_eof(std::string_view operation, error_subject s, std::size_t done,
                      std::size_t wanted) {
    throw_error(ENODATA, subject_of(operation, s.describe()),
                "end of file after " + std::to_string(done) + " of " + std::to_string(wanted) +
                    " bytes");
}

descriptor open_socket(int family, int type, std::string_view operation,
                       const socket_address& address) {
    const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_address_error(errno, operation, address);
    return descriptor(fd);
}

task<descriptor> connect_socket(int type, socket_address to, std::chrono::nanoseconds timeout) {
    if (to.empty()) throw_address_error(EINVAL, "connect", to);
    descriptor fd = open_socket(to.family(), type, "connect", to);
    auto op = make_operation([fd = fd.fd(), &to](io_uring_sqe& sqe) noexcept {
        prep_connect(sqe, fd, to.data(), to.size());
    });
    if (timeout.count() > 0) op.with_timeout(timeout);
    const io_result r = co_await std::move(op);
    if (!r.ok()) throw_address_error(r.error(), "connect", to);
    co_return fd;
}

descriptor open_listener(int type, const socket_address& local, const listen_options& options) {
    if (local.empty()) throw_address_error(EINVAL, "bind", local);
    descriptor fd = open_socket(local.family(), type, "bind", local);
    const int on = 1;
    if (!local.is_unix()) {
        if (options.reuse_address &&
            ::setsockopt(fd.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
            throw_address_error(errno, "setsockopt SO_REUSEADDR", local);
        }
        if (options.reuse_port &&
            ::setsockopt(fd.fd(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
            throw_address_error(errno, "setsockopt SO_REUSEPORT", local);
        }
    }
    if (::bind(fd.fd(), local.data(), local.size()) != 0) {
        throw_address_error(errno, "bind", local);
    }
    if (::listen(fd.fd(), options.backlog) != 0) throw_address_error(errno, "listen", local);
    return fd;
}

std::pair<descriptor, descriptor> open_socketpair(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) {
        throw_error(errno, "socketpair");
    }
    return {descriptor(fds[0]), descriptor(fds[1])};
}

} // namespace detail

std::string socket::describe() const {
    if (!name_.empty()) return name_.to_string();
    if (!is_open()) return "(closed socket)";
    socket_address a;
    *a.size_ptr() = socket_address::capacity();
    if (::getpeername(fd(), a.data(), a.size_ptr()) == 0 && !a.empty()) return a.to_string();
    *a.size_ptr() = socket_address::capacity();
    if (::getsockname(fd(), a.data(), a.size_ptr()) == 0 && !a.empty()) return a.to_string();
    return "fd " + std::to_string(fd());
}

void socket::set_option(int level, int option, int value, std::string_view option_name) {
    if (::setsockopt(fd(), level, option, &value, sizeof(value)) != 0) {
        detail::throw_socket_error(errno, "setsockopt " + std::string(option_name), *this);
    }
}

int socket::option(int level, int option, std::string_view option_name) const {
    int value = 0;
    socklen_t length = sizeof(value);
    if (::getsockopt(fd(), level, option, &value, &length) != 0) {
        detail::throw_socket_error(errno, "getsockopt " + std::string(option_name), *this);
    }
    return value;
}

socket_address socket::local_address() const {
    socket_address a;
    *a.size_ptr() = socket_address::capacity();
    if (::getsockname(fd(), a.data(), a.size_ptr()) != 0) {
        detail::throw_socket_error(errno, "getsockname", *this);
    }
    return a;
}

socket_address socket::peer_address() const {
    socket_address a;
    *a.size_ptr() = socket_address::capacity();
    if (::getpeername(fd(), a.data(), a.size_ptr()) != 0) {
        detail::throw_socket_error(errno, "getpeername", *this);
    }
    return a;
}

void detail::recv_from_operation::prepare(io_uring_sqe& sqe) noexcept {
    msg_ = msghdr{};
    msg_.msg_name = from_.data();
    msg_.msg_namelen = socket_address::capacity();
    msg_.msg_iov = &iov_;
    msg_.msg_iovlen = 1;
    prep_recvmsg(sqe, socket_->fd(), &msg_);
}

task<> detail::send_all(file_ref file, error_subject subject, std::span<const std::byte> data) {
    while (!data.empty()) {
        const std::size_t n =
            co_await socket_op<true>("send", subject, [file, data](io_uring_sqe& sqe) noexcept {
                prep_send(sqe, file, clamp_transfer(data), MSG_WAITALL | MSG_NOSIGNAL);
            });
        // A stream send of a non-empty buffer returns at least one byte or fails.
        if (n == 0) throw_socket_error(EPIPE, "send_all", subject);
        data = data.subspan(n);
    }
}

task<> detail::recv_exact(file_ref file, error_subject subject, std::span<std::byte> buf) {
    std::size_t done = 0;
    while (done < buf.size()) {
        const auto rest = buf.subspan(done);
        const std::size_t n =
            co_await socket_op<true>("recv", subject, [file, rest](io_uring_sqe& sqe) noexcept {
                prep_recv(sqe, file, clamp_transfer(rest), MSG_WAITALL);
            });
        if (n == 0) throw_socket_eof("recv_exact", subject, done, buf.size());
        done += n;
    }
}

std::string direct_stream::describe() const {
    if (!name_.empty()) return name_.to_string();
    if (!is_open()) return "(closed direct socket)";
    return "direct socket slot " + std::to_string(slot_.get().index);
}

namespace detail {
namespace {

// Whether `d`'s ring has a registered file table. An update of slot 0 that skips it
// (IORING_REGISTER_FILES_SKIP) changes nothing, and fails with ENXIO only without a table.
bool has_file_table(driver& d) noexcept {
    const int skip[1] = {IORING_REGISTER_FILES_SKIP};
    try {
        registrar(d.ring()).update_files(0, skip);
    } catch (const error& e) {
        return e.errnum() != ENXIO;
    } catch (...) {
    }
    return true;
}

} // namespace

void throw_direct_accept_error(driver& d, int errnum, const socket& listener) {
    // With IORING_FILE_INDEX_ALLOC the kernel answers ENFILE both for a full table and for
    // none at all (there is no bitmap to allocate from); with a given slot, ENXIO for none.
    if (errnum == ENXIO || (errnum == ENFILE && !has_file_table(d))) {
        throw_error(ENXIO, subject_of("accept", listener.describe()),
                    "no registered file table (a direct accept needs one: "
                    "registrar::register_files_sparse)");
    }
    if (errnum == ENFILE) {
        throw_error(ENFILE, subject_of("accept", listener.describe()),
                    "the registered file table is full");
    }
    throw_socket_error(errnum, "accept", listener);
}

} // namespace detail

void datagram_socket::connect(const socket_address& peer) {
    if (::connect(fd(), peer.data(), peer.size()) != 0) {
        detail::throw_address_error(errno, "connect", peer);
    }
    name_ = peer;
}

descriptor datagram_socket::open_bound(int family, int type, const socket_address& local) {
    descriptor fd = detail::open_socket(family, type, local.empty() ? "socket" : "bind", local);
    if (!local.empty() && ::bind(fd.fd(), local.data(), local.size()) != 0) {
        detail::throw_address_error(errno, "bind", local);
    }
    return fd;
}

namespace detail {
namespace {

// The CQE of the send of a send_then_recv round (the recv's carries no tag). Tag 1 is the
// driver's link timeout.
constexpr unsigned linked_send_tag = 2;

} // namespace

send_then_recv_base::~send_then_recv_base() {
    assert(state_ != state::in_flight && state_ != state::waiting_slot &&
           "destroyed with its operation in flight");
}

bool send_then_recv_base::suspend(std::coroutine_handle<> waiter, std::stop_token token) {
    driver_ = current_driver();
    assert(driver_ != nullptr && "an I/O operation needs a running tram::driver");
    waiter_ = waiter;
    sent_ = 0;
    send_error_ = 0;
    recv_ = completion{};
    cancel_requested_ = false;
    if (token.stop_requested()) {
        cancel_requested_ = true;
        recv_.result = -ECANCELED;
        return false;
    }
    if (driver_->acquire_slot(*this)) {
        try {
            submit();
        } catch (...) {
            driver_->release_slot(); // no SQE could be had: nothing started
            throw;
        }
    } else {
        state_ = state::waiting_slot;
    }
    // After the SQEs exist, so that a stop request always finds something to cancel.
    if (token.stop_possible()) stop_callback_.emplace(std::move(token), canceller{this});
    return true;
}

void send_then_recv_base::submit() {
    const file_ref fd = file_;
    const auto rest = reply_.subspan(sent_);
    auto prep_receive = [&](io_uring_sqe& sqe) noexcept {
        if (buf_group_ >= 0) {
            prep_recv_select(sqe, fd, static_cast<std::uint16_t>(buf_group_));
        } else {
            prep_recv(sqe, fd, clamp_transfer(buf_));
        }
        set_user_data(sqe, user_data());
    };
    if (rest.empty()) {
        send_alone_ = false;
        prep_receive(driver_->get_sqe());
    } else if (rest.size() > max_transfer) {
        // More than one send moves: a skipped CQE would hide how much went, so this part goes
        // unlinked, with its CQE.
        send_alone_ = true;
        io_uring_sqe& sqe = driver_->get_sqe();
        prep_send(sqe, fd, rest.first(max_transfer), MSG_WAITALL | MSG_NOSIGNAL);
        set_user_data(sqe, user_data(linked_send_tag));
    } else {
        send_alone_ = false;
        // MSG_WAITALL: the kernel retries a partial send itself, so a short result means the
        // send failed part way, which is what breaks the link.
        const sqe_range sqes = driver_->get_sqes(2);
        prep_send(sqes[0], fd, rest, MSG_WAITALL | MSG_NOSIGNAL);
        set_user_data(sqes[0], user_data(linked_send_tag));
        prep_receive(sqes[1]);
        // The request a reply answers rarely comes before the reply has left: wait for the
        // socket to be readable instead of trying a recv that would fail first (5.19).
        sqes[1].ioprio |= IORING_RECVSEND_POLL_FIRST;
        sqes.link();
        add_flags(sqes[0], sqe_flag::cqe_skip_success);
    }
    state_ = state::in_flight;
}

void send_then_recv_base::request_cancel() noexcept {
    if (!driver_->on_driver_thread()) {
        remote_cancel_posted_.store(true, std::memory_order_release);
        driver_->post_cancel(*this);
        return;
    }
    cancel_here();
}

void send_then_recv_base::cancel_here() noexcept {
    switch (state_) {
    case state::waiting_slot:
        driver_->forget_waiting(*this);
        cancel_requested_ = true;
        recv_.result = -ECANCELED;
        state_ = state::completed;
        driver_->schedule(waiter_);
        break;
    case state::in_flight:
        if (cancel_requested_) break;
        cancel_requested_ = true;
        // Both: a recv still waiting behind its send cannot be cancelled by itself (it has not
        // started), and the send may be over already. Whichever is not there answers ENOENT.
        try {
            driver_->cancel(user_data(linked_send_tag));
            if (!send_alone_) driver_->cancel(user_data());
        } catch (...) {
            // The ring is failing; the driver's shutdown cancels everything anyway.
        }
        break;
    default:
        break;
    }
}

void send_then_recv_base::complete() noexcept {
    state_ = state::completed;
    driver_->release_slot();
    driver_->schedule(waiter_);
}

void send_then_recv_base::next_round() noexcept {
    // A short send: the rest, linked to a new recv. Not once the driver is draining, whose
    // one cancel-everything request would miss the new SQEs.
    if (cancel_requested_ || driver_->shutting_down()) {
        cancel_requested_ = true;
        recv_.result = -ECANCELED;
        return complete();
    }
    try {
        submit();
    } catch (const error& e) {
        send_error_ = e.errnum();
        complete();
    } catch (...) {
        send_error_ = ENOMEM;
        complete();
    }
}

void send_then_recv_base::on_send(const completion& c) noexcept {
    // Only a failed or short send posts a CQE when linked, and then the kernel fails the
    // recv behind it without posting one (REQ_F_SKIP_LINK_CQES: the head skipped success):
    // this CQE ends the round, and the recv never ran.
    if (c.result < 0) {
        send_error_ = -c.result;
    } else if (c.result == 0) {
        send_error_ = EPIPE; // a stream send of a non-empty buffer moves a byte or fails
    } else {
        sent_ += static_cast<std::size_t>(c.result);
    }
    if (send_error_ != 0) return complete();
    next_round();
}

void send_then_recv_base::on_recv(const completion& c) noexcept {
    recv_ = c;
    sent_ = reply_.size();
    complete();
}

void send_then_recv_base::on_complete(operation_base& base, const completion& c) noexcept {
    auto& self = static_cast<send_then_recv_base&>(base);
    if ((c.user_data & user_data_tag_mask) == linked_send_tag) {
        self.on_send(c);
    } else {
        self.on_recv(c);
    }
}

void send_then_recv_base::on_start(operation_base& base) noexcept {
    auto& self = static_cast<send_then_recv_base&>(base);
    try {
        self.submit();
    } catch (const error& e) {
        self.send_error_ = e.errnum();
        self.complete();
    } catch (...) {
        self.send_error_ = ENOMEM;
        self.complete();
    }
}

void send_then_recv_base::on_cancel(operation_base& base) noexcept {
    static_cast<send_then_recv_base&>(base).cancel_here();
}

completion send_then_recv_base::finish() {
    // Destroying the callback waits for one running on another thread; after it no cancel
    // request can be posted, and one still pending is withdrawn.
    stop_callback_.reset();
    if (remote_cancel_posted_.exchange(false, std::memory_order_acq_rel)) {
        driver_->withdraw_cancel(*this);
    }
    state_ = state::idle;
    const auto cancelled = [this](int errnum) {
        return cancel_requested_ && (errnum == ECANCELED || errnum == EINTR) ? ECANCELED : errnum;
    };
    if (send_error_ != 0) throw_socket_error(cancelled(send_error_), "send", subject_);
    if (recv_.result < 0) throw_socket_error(cancelled(-recv_.result), "recv", subject_);
    return recv_;
}

recv_chunk send_then_recv_select_operation::await_resume() {
    // A buffer the kernel picked comes with a result of 0 (end of stream) as well: give it
    // back before anything else.
    const completion c = recv_completion();
    const auto id = c.buffer_id();
    if (id && c.result <= 0) ring_->recycle(*id);
    const completion done = finish();
    if (done.result == 0 || !id) return {};
    return recv_chunk(*ring_, *id, static_cast<std::uint32_t>(done.result));
}

} // namespace detail
} // namespace tram
