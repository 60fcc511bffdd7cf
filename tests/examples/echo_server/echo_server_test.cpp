// Tests of examples/echo_server as a user runs it: the real process on 127.0.0.1 port 0, its
// "listening on" line, hundreds of concurrent clients checked byte for byte (with both ways of
// spreading connections over two workers, and the "connections per worker" line it prints at
// exit), SIGTERM with clients connected, a port in use, and its arguments. Every wait is bounded; a
// server that outlives a test is killed.
#include <tram/runtime.hpp>

#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string server_path() {
    const char* path = std::getenv("ECHO_SERVER");
    REQUIRE(path != nullptr); // meson passes it; by hand: ECHO_SERVER=build/.../echo_server
    return path;
}

// The server as a child process, its stdout and stderr on pipes.
class server_process {
public:
    explicit server_process(std::vector<std::string> args) {
        args.insert(args.begin(), server_path());
        int out[2];
        int err[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(err[1], STDERR_FILENO);
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
    }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    ~server_process() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
        ::close(err_);
    }

    // The first line on stdout, or what came before the deadline.
    std::string first_line(std::chrono::milliseconds timeout = 5s) {
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (line.find('\n') == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{out_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            char c[256];
            const ssize_t n = ::read(out_, c, sizeof(c));
            if (n <= 0) break;
            line.append(c, static_cast<std::size_t>(n));
        }
        const std::size_t end = line.find('\n');
        if (end != std::string::npos) unread_ += line.substr(end + 1);
        return line.substr(0, end);
    }

    // The port of a "listening on 127.0.0.1:PORT" line (fails the test on anything else).
    std::uint16_t port() {
        const std::string line = first_line();
        const std::string prefix = "listening on 127.0.0.1:";
        INFO("stdout: " << line << "; stderr: " << error_text());
        REQUIRE(line.rfind(prefix, 0) == 0);
        return static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    }

    void signal(int sig) const { ::kill(pid_, sig); }

    // The exit status (as waitpid gives it), or nullopt if it still runs after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!status_ && std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                status_ = status;
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        return status_;
    }

    // What it wrote to stdout after the first line (read once it has exited).
    std::string rest_of_output() {
        std::string text = std::exchange(unread_, {});
        char c[1024];
        for (ssize_t n; (n = ::read(out_, c, sizeof(c))) > 0;) {
            text.append(c, static_cast<std::size_t>(n));
        }
        return text;
    }

    // What it wrote to stderr so far (read once it has exited, or without blocking).
    std::string error_text() {
        std::string text;
        const int flags = ::fcntl(err_, F_GETFL);
        ::fcntl(err_, F_SETFL, flags | O_NONBLOCK);
        char c[1024];
        for (ssize_t n; (n = ::read(err_, c, sizeof(c))) > 0;) {
            text.append(c, static_cast<std::size_t>(n));
        }
        errors_ += text;
        return errors_;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    int err_ = -1;
    std::optional<int> status_;
    std::string errors_;
    std::string unread_; // stdout read past the first line
};

bool exited_with(const std::optional<int>& status, int code) {
    return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
    std::vector<std::byte> data(size);
    std::uint32_t x = seed * 2654435761U + 1;
    for (auto& b : data) {
        x = x * 1664525U + 1013904223U;
        b = static_cast<std::byte>(x >> 24);
    }
    return data;
}

// One client: sends `size` bytes and half-closes while receiving the echo, then expects the
// server's end of stream. Gives true when every byte came back in order.
tram::task<bool> echo_once(std::uint16_t port, std::size_t size, unsigned seed) {
    tram::tcp_stream s =
        co_await tram::tcp_stream::connect(tram::socket_address::loopback_v4(port));
    const auto payload = pattern(size, seed);
    std::vector<std::byte> echoed(size);
    auto sender = [](tram::tcp_stream& s, const std::vector<std::byte>& p) -> tram::task<> {
        co_await s.send_all(p);
        co_await s.shutdown(SHUT_WR);
    };
    co_await tram::when_all(sender(s, payload), s.recv_exact(echoed));
    std::byte extra{};
    const std::size_t after = co_await s.recv(std::span(&extra, 1));
    co_return after == 0 && echoed == payload;
}

// `clients` clients at once, sizes from 1 byte to 1 MiB; gives how many were echoed exactly,
// or -1 if they were not all done within `timeout`.
int many_clients(std::uint16_t port, int clients, std::chrono::seconds timeout = 60s) {
    static constexpr std::size_t sizes[] = {1,     2,     64,     1000,    4096,
                                            16384, 65537, 300000, 1 << 20, 8192};
    tram::driver d;
    return tram::run(
        d, [](std::uint16_t port, int clients, std::chrono::seconds timeout) -> tram::task<int> {
            auto one = [](std::uint16_t port, int i) -> tram::task<bool> {
                try {
                    co_return co_await echo_once(
                        port, sizes[static_cast<std::size_t>(i) % std::size(sizes)],
                        static_cast<unsigned>(i));
                } catch (const tram::error& e) {
                    UNSCOPED_INFO("client " << i << ": " << e.what());
                    co_return false;
                }
            };
            std::vector<tram::task<bool>> all;
            for (int i = 0; i < clients; ++i)
                all.push_back(one(port, i));
            auto outcome = co_await tram::when_any(tram::when_all(std::move(all)),
                                                   [](std::chrono::seconds t) -> tram::task<> {
                                                       co_await tram::sleep_for(t);
                                                   }(timeout));
            if (outcome.index() != 0) co_return -1;
            int good = 0;
            for (bool ok : std::get<0>(outcome))
                good += ok ? 1 : 0;
            co_return good;
        }(port, clients, timeout));
}

// Connects `count` clients and exchanges one message on each, leaving them open.
std::vector<int> idle_clients(std::uint16_t port, int count) {
    std::vector<int> fds;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        fds.push_back(fd);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0);
        timeval limit{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
        char c = 'x';
        REQUIRE(::send(fd, &c, 1, MSG_NOSIGNAL) == 1);
        REQUIRE(::recv(fd, &c, 1, 0) == 1);
        CHECK(c == 'x');
    }
    return fds;
}

using tram::test::connections_per_worker;

} // namespace

TEST_CASE("two hundred and fifty concurrent clients get payloads of 1 byte to 1 MiB back exactly") {
    server_process server({"--port", "0"});
    const std::uint16_t port = server.port();
    CHECK(many_clients(port, 250) == 250);
    server.signal(SIGTERM);
    CHECK(exited_with(server.wait(), 0));
    CHECK(server.error_text().empty());
}

TEST_CASE("with two SO_REUSEPORT workers, concurrent clients get their payloads back exactly") {
    server_process server(
        {"--host", "127.0.0.1", "--port", "0", "--threads", "2", "--accept", "reuseport"});
    const std::uint16_t port = server.port();
    CHECK(many_clients(port, 250) == 250);
    server.signal(SIGINT);
    CHECK(exited_with(server.wait(), 0));
    CHECK(server.error_text().empty());
    // The kernel picks a listener by a hash of the addresses: both get some (all 250 on one
    // would be a 2^-249 chance).
    const std::vector<long> served = connections_per_worker(server.rest_of_output());
    REQUIRE(served.size() == 2);
    CHECK(served[0] + served[1] == 250);
    CHECK(served[0] > 0);
    CHECK(served[1] > 0);
}

TEST_CASE("with two workers and one acceptor handing connections off, clients get their payloads "
          "back exactly, dealt out round-robin") {
    server_process server({"--port", "0", "--threads", "2", "--accept", "handoff"});
    const std::uint16_t port = server.port();
    CHECK(many_clients(port, 250) == 250);
    server.signal(SIGTERM);
    CHECK(exited_with(server.wait(), 0));
    CHECK(server.error_text().empty());
    const std::vector<long> served = connections_per_worker(server.rest_of_output());
    CHECK(served == std::vector<long>{125, 125});
}

TEST_CASE("SIGTERM ends the server with exit 0 while clients are connected") {
    for (const char* accept : {"none", "reuseport", "handoff"}) {
        const bool one = std::string(accept) == "none";
        server_process server(
            one ? std::vector<std::string>{"--port", "0"}
                : std::vector<std::string>{"--port", "0", "--threads", "2", "--accept", accept});
        const std::uint16_t port = server.port();
        std::vector<int> clients = idle_clients(port, 50);
        server.signal(SIGTERM);
        const auto status = server.wait();
        INFO("accept " << accept << ", stderr: " << server.error_text());
        CHECK(exited_with(status, 0));
        CHECK(server.error_text().empty());
        if (std::string(accept) == "handoff") {
            CHECK(connections_per_worker(server.rest_of_output()) == std::vector<long>{25, 25});
        }
        // Each client sees its connection end (end of stream or reset), not a hang.
        for (int fd : clients) {
            char c;
            CHECK(::recv(fd, &c, 1, 0) <= 0);
            ::close(fd);
        }
    }
}

TEST_CASE("SIGTERM while connections are still being handed off ends the server cleanly") {
    server_process server({"--port", "0", "--threads", "2", "--accept", "handoff"});
    const std::uint16_t port = server.port();
    // A client thread connects as fast as it can (the kernel completes each connection in the
    // listen backlog, accepted or not) until the server is gone, so that the signal comes while
    // the acceptor is dealing out connections.
    std::atomic<int> connected{0};
    std::vector<int> fds;
    std::thread connector([&] {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < 2000; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            fds.push_back(fd);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) break;
            ++connected;
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (connected < 100 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    server.signal(SIGTERM);
    const auto status = server.wait();
    connector.join();
    INFO("connected " << connected << ", stderr: " << server.error_text());
    CHECK(connected >= 100);
    CHECK(exited_with(status, 0));
    CHECK(server.error_text().empty());
    const std::vector<long> served = connections_per_worker(server.rest_of_output());
    REQUIRE(served.size() == 2);
    CHECK(served[0] + served[1] <= connected);
    // Round-robin from worker 0, which serves its own at once; worker 1's queued ones are
    // closed unserved at the stop.
    CHECK(served[1] <= served[0] + 1);
    for (int fd : fds)
        ::close(fd);
}

TEST_CASE("a port in use makes the server exit non-zero naming the address") {
    const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(taken >= 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(taken, reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0);
    REQUIRE(::listen(taken, 1) == 0);
    socklen_t length = sizeof(at);
    REQUIRE(::getsockname(taken, reinterpret_cast<sockaddr*>(&at), &length) == 0);
    const std::string port = std::to_string(ntohs(at.sin_port));

    server_process server({"--port", port});
    const auto status = server.wait();
    ::close(taken);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) != 0);
    const std::string errors = server.error_text();
    CHECK_THAT(errors, Catch::Contains("127.0.0.1:" + port) && Catch::Contains("EADDRINUSE"));
    CHECK(server.first_line(100ms).empty()); // never claimed to listen
}

TEST_CASE("--help prints the usage and exits 0") {
    server_process server({"--help"});
    CHECK_THAT(server.first_line(), Catch::StartsWith("usage: echo_server"));
    CHECK(exited_with(server.wait(), 0));
}

TEST_CASE("a bad argument exits non-zero saying which") {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--port", "70000"},
                                                 {"--threads", "0"},
                                                 {"--accept", "sideways"},
                                                 {"--bogus"},
                                                 {"--host", "not-an-address", "--port", "0"},
                                                 {"--port"}}) {
        server_process server(args);
        const auto status = server.wait();
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) != 0);
        const std::string errors = server.error_text();
        INFO(errors);
        CHECK_THAT(errors, Catch::StartsWith("echo_server: "));
        CHECK(errors.find(args.back()) != std::string::npos);
    }
}
