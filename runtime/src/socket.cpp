// The out-of-line parts of sockets: error messages (built only when throwing), socket
// creation, connect, options and addresses, and the whole-buffer transfers.
#include <tram/socket.hpp>

#include <tram/accept_stream.hpp>
#include <tram/error.hpp>
#include <tram/unix_socket.hpp>

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

void throw_socket_error(int errnum, std::string_view operation, const socket& s) {
    throw_error(errnum, subject_of(operation, s.describe()));
}

void throw_address_error(int errnum, std::string_view operation, const socket_address& address) {
    throw_error(errnum, subject_of(operation, address.to_string()));
}

void throw_socket_eof(std::string_view operation, const socket& s, std::size_t done,
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

task<> stream_socket::send_all(std::span<const std::byte> data) const {
    while (!data.empty()) {
        const std::size_t n = co_await send(data, MSG_WAITALL);
        // A stream send of a non-empty buffer returns at least one byte or fails.
        if (n == 0) detail::throw_socket_error(EPIPE, "send_all", *this);
        data = data.subspan(n);
    }
}

task<> stream_socket::recv_exact(std::span<std::byte> buf) const {
    std::size_t done = 0;
    while (done < buf.size()) {
        const std::size_t n = co_await recv(buf.subspan(done), MSG_WAITALL);
        if (n == 0) detail::throw_socket_eof("recv_exact", *this, done, buf.size());
        done += n;
    }
}

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

} // namespace tram
