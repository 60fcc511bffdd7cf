// epoll_echo: a plain, fair, fast single-threaded epoll TCP echo server.
//
// The peer tram's echo_server is measured against. Written the way a careful epoll user would:
// non-blocking sockets, one epoll_wait returning up to 1024 events per turn, level-triggered
// (edge-triggered would need one more read per message, the one that returns EAGAIN), a read
// that repeats only while it fills the whole buffer, the echo written straight back, and a
// per-connection backlog (with EPOLLOUT, and no reading meanwhile) only when a write is short.
//
//   epoll_echo [--host 127.0.0.1] [--port 7000]

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "peer_options.hpp"

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr int max_events = 1024;
// A read that fills the buffer is repeated at most this many times per event, so that one busy
// connection cannot starve the others; level triggering reports the rest next turn.
constexpr int max_reads_per_event = 16;

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

constexpr const char* name = "epoll_echo";

[[noreturn]] void die(const char* what) { peer::die(name, what, errno); }

// Bytes a short write left behind; empty for nearly every connection nearly all the time.
struct connection {
    std::vector<char> pending;
    std::size_t pending_offset = 0;
    bool open = false;
};

class server {
public:
    explicit server(int listen_fd)
        : listen_fd_(listen_fd) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) die("epoll_create1");
        watch(listen_fd_, EPOLLIN, EPOLL_CTL_ADD);
    }

    void run() {
        std::vector<epoll_event> events(max_events);
        while (!stop_requested) {
            int n = ::epoll_wait(epoll_fd_, events.data(), max_events, -1);
            if (n < 0) {
                if (errno == EINTR) continue;
                die("epoll_wait");
            }
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == listen_fd_) {
                    accept_all();
                } else {
                    on_ready(fd, events[i].events);
                }
            }
        }
    }

private:
    void watch(int fd, std::uint32_t mask, int op) {
        epoll_event ev{};
        ev.events = mask;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd_, op, fd, &ev) < 0) die("epoll_ctl");
    }

    void accept_all() {
        // Bounded: the backlog holds at most SOMAXCONN connections.
        for (int i = 0; i < SOMAXCONN; ++i) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
                if (errno == EMFILE || errno == ENFILE) {
                    std::fprintf(stderr, "epoll_echo: accept4: %s\n", std::strerror(errno));
                    return;
                }
                die("accept4");
            }
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (static_cast<std::size_t>(fd) >= connections_.size())
                connections_.resize(static_cast<std::size_t>(fd) * 2 + 1);
            connections_[static_cast<std::size_t>(fd)].open = true;
            watch(fd, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    void close_connection(int fd) {
        connection& c = connections_[static_cast<std::size_t>(fd)];
        c.open = false;
        c.pending.clear();
        c.pending_offset = 0;
        ::close(fd); // closing removes it from the epoll set
    }

    void on_ready(int fd, std::uint32_t mask) {
        connection& c = connections_[static_cast<std::size_t>(fd)];
        if (!c.open) return;
        if (mask & EPOLLOUT) {
            if (!flush(fd, c)) return;
            if (!c.pending.empty()) {
                // Hung up with bytes still unsent: level triggering would report it forever.
                if (mask & (EPOLLHUP | EPOLLERR)) close_connection(fd);
                return;
            }
            watch(fd, EPOLLIN, EPOLL_CTL_MOD);
        }
        if (mask & (EPOLLIN | EPOLLHUP | EPOLLERR)) echo(fd, c);
    }

    // Writes what is pending; false when the connection was closed.
    bool flush(int fd, connection& c) {
        while (c.pending_offset < c.pending.size()) {
            ssize_t n = ::write(fd, c.pending.data() + c.pending_offset,
                                c.pending.size() - c.pending_offset);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return true;
                close_connection(fd);
                return false;
            }
            c.pending_offset += static_cast<std::size_t>(n);
        }
        c.pending.clear();
        c.pending_offset = 0;
        return true;
    }

    void echo(int fd, connection& c) {
        for (int round = 0; round < max_reads_per_event; ++round) {
            ssize_t got = ::read(fd, buffer_, sizeof buffer_);
            if (got == 0) {
                close_connection(fd);
                return;
            }
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                close_connection(fd);
                return;
            }
            std::size_t sent = 0;
            while (sent < static_cast<std::size_t>(got)) {
                ssize_t n = ::write(fd, buffer_ + sent, static_cast<std::size_t>(got) - sent);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) break;
                    close_connection(fd);
                    return;
                }
                sent += static_cast<std::size_t>(n);
            }
            if (sent < static_cast<std::size_t>(got)) {
                // The peer is not reading: keep the rest, stop reading until it drains.
                c.pending.assign(buffer_ + sent, buffer_ + got);
                c.pending_offset = 0;
                watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            // A short read emptied the socket; level triggering reports any later bytes.
            if (static_cast<std::size_t>(got) < sizeof buffer_) return;
        }
    }

    int listen_fd_;
    int epoll_fd_ = -1;
    std::vector<connection> connections_;
    char buffer_[read_buffer_size];
};

// Thousands of connections need more descriptors than the usual soft limit of 1024.
void raise_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

} // namespace

int main(int argc, char** argv) {
    const peer::options opts = peer::parse_options(
        argc, argv, name, "A single-threaded epoll TCP echo server (benchmark peer).");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    raise_file_limit();
    int listen_fd = peer::listen_on(opts, name, SOCK_NONBLOCK);
    std::fprintf(stderr, "epoll_echo: listening on %s:%d\n", opts.host.c_str(), opts.port);
    auto srv = std::make_unique<server>(listen_fd);
    srv->run();
    return 0;
}
