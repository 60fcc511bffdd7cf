#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tram::test {

fd_pair make_socketpair(int type) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

fd_pair make_pipe(int flags) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | flags) == 0);
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

sockaddr_in loopback_any_port() noexcept {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    return a;
}

loopback_listener::loopback_listener(int backlog)
    : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))
    , addr_(loopback_any_port()) {
    REQUIRE(fd_);
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)) == 0);
    socklen_t len = sizeof(addr_);
    REQUIRE(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr_), &len) == 0);
    REQUIRE(::listen(fd_.get(), backlog) == 0);
}

unique_fd loopback_listener::connect_client() const {
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(c);
    REQUIRE(::connect(c.get(), sockaddr_ptr(), sizeof(addr_)) == 0);
    return c;
}

unique_fd loopback_listener::accept_blocking() const {
    unique_fd s(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(s);
    return s;
}

fd_pair make_tcp_pair() {
    loopback_listener l;
    unique_fd client = l.connect_client();
    unique_fd server = l.accept_blocking();
    return {std::move(client), std::move(server)};
}

bool is_open(int fd) noexcept { return ::fcntl(fd, F_GETFD) != -1; }

} // namespace tram::test
