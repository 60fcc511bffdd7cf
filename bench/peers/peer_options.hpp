// The command line and listening socket that the benchmark's peer echo servers share, so that
// each peer file holds only its own event loop.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace peer {

struct options {
    std::string host = "127.0.0.1";
    int port = 7000;
};

[[noreturn]] inline void die(const char* name, const char* what, int err) {
    std::fprintf(stderr, "%s: %s: %s\n", name, what, std::strerror(err));
    std::exit(1);
}

inline void print_usage(FILE* out, const char* name, const char* summary) {
    std::fprintf(out,
                 "usage: %s [--host ADDR] [--port PORT]\n"
                 "  %s\n"
                 "  --host ADDR  IPv4 address to listen on (default 127.0.0.1)\n"
                 "  --port PORT  TCP port (default 7000)\n",
                 name, summary);
}

// --help prints `summary` and exits 0; anything unknown or malformed exits 2.
inline options parse_options(int argc, char** argv, const char* name, const char* summary) {
    options opts;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout, name, summary);
            std::exit(0);
        }
        if ((arg == "--host" || arg == "--port") && i + 1 < argc) {
            const char* value = argv[++i];
            if (arg == "--host") {
                opts.host = value;
                continue;
            }
            char* end = nullptr;
            const long port = std::strtol(value, &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                std::fprintf(stderr, "%s: bad port '%s'\n", name, value);
                std::exit(2);
            }
            opts.port = static_cast<int>(port);
            continue;
        }
        std::fprintf(stderr, "%s: unknown or incomplete argument '%s'\n", name, argv[i]);
        print_usage(stderr, name, summary);
        std::exit(2);
    }
    return opts;
}

// A listening TCP socket on `opts` (SO_REUSEADDR, backlog SOMAXCONN), with `socket_flags`
// (SOCK_NONBLOCK for an epoll server) added to SOCK_CLOEXEC.
inline int listen_on(const options& opts, const char* name, int socket_flags = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | socket_flags, 0);
    if (fd < 0) die(name, "socket", errno);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(opts.port));
    if (::inet_pton(AF_INET, opts.host.c_str(), &addr.sin_addr) != 1) {
        std::fprintf(stderr, "%s: bad IPv4 address '%s'\n", name, opts.host.c_str());
        std::exit(2);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die(name, "bind", errno);
    if (::listen(fd, SOMAXCONN) < 0) die(name, "listen", errno);
    return fd;
}

} // namespace peer
