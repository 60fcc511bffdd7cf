// Tests of tcp.hpp with socket.cpp, accept_stream.hpp and recv_stream.hpp, over loopback only
// (127.0.0.1 and ::1): echo exchanges, a thousand connections through multishot accept and
// recv, a buffer ring that runs dry, refused, reset and timed-out connections, SEND_ZC, and
// send_then_recv (a send linked to a recv) with its short, failed and cancelled paths, and
// direct streams: connections accepted straight into the ring's registered file table.
#include <tram/registrar.hpp>
#include <tram/runtime.hpp>

#include "skip.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
    std::vector<std::byte> data(size);
    std::uint32_t x = seed * 2654435761U + 1;
    for (auto& b : data) {
        x = x * 1664525U + 1013904223U;
        b = static_cast<std::byte>(x >> 24);
    }
    return data;
}

// Echoes everything received on `s` until end of stream, then closes.
template <typename Stream>
task<> echo_back(Stream s) {
    std::vector<std::byte> buf(64 * 1024);
    for (;;) {
        const std::size_t n = co_await s.recv(buf);
        if (n == 0) break;
        co_await s.send_all(std::span(buf).first(n));
    }
    co_await s.close();
}

// Sends `payload` and half-closes, while receiving the echo; checks it byte for byte.
template <typename Stream>
task<> exchange(Stream& s, std::vector<std::byte> payload) {
    std::vector<std::byte> echoed(payload.size());
    auto sender = [](Stream& s, const std::vector<std::byte>& p) -> task<> {
        co_await s.send_all(p);
        co_await s.shutdown(SHUT_WR);
    };
    co_await when_all(sender(s, payload), s.recv_exact(echoed));
    std::byte extra{};
    const auto r1 = co_await s.recv(std::span(&extra, 1)); // then end of stream
    CHECK(r1 == 0);
    CHECK(echoed == payload);
}

template <typename Listener, typename Stream>
void echo_over(const socket_address& where) {
    driver d;
    run(d, [](socket_address where) -> task<> {
        Listener listener = Listener::bind(where);
        for (const std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{65536},
                                       std::size_t{5} * 1024 * 1024 + 3}) {
            // The handshake completes in the backlog: connect first, then accept.
            Stream client = co_await Stream::connect(listener.name());
            Stream accepted = co_await listener.accept();
            spawn(echo_back(std::move(accepted)));
            co_await exchange(client, pattern(size, static_cast<unsigned>(size)));
        }
    }(where));
}

void raise_descriptor_limit(rlim_t wanted) {
    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    if (lim.rlim_cur >= wanted) return;
    lim.rlim_cur = std::min(wanted, lim.rlim_max);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
}

// A connected client and its accepted server side.
task<std::pair<tcp_stream, tcp_stream>> connected_pair(const tcp_listener& listener) {
    tcp_stream client = co_await tcp_stream::connect(listener.name());
    tcp_stream server = co_await listener.accept();
    co_return std::pair{std::move(client), std::move(server)};
}

// How many descriptors this process has open.
int open_descriptors() {
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    int count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
    return count - 1; // the directory's own
}

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
std::uint16_t unused_port() {
    driver d;
    tcp_listener l = tcp_listener::bind(socket_address::loopback_v4());
    return l.name().port();
}

} // namespace

TEST_CASE("an echo over TCP/IPv4 returns payloads from 1 byte to 5 MiB byte for byte") {
    echo_over<tcp_listener, tcp_stream>(socket_address::loopback_v4());
}

TEST_CASE("an echo over TCP/IPv6 returns payloads from 1 byte to 5 MiB byte for byte") {
    echo_over<tcp_listener, tcp_stream>(socket_address::parse("[::1]:0"));
}

TEST_CASE("a single accept gives the peer's address") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, accepted] = co_await connected_pair(listener);
        CHECK(accepted.name() == client.local_address());
        CHECK(accepted.peer_address() == client.local_address());
        CHECK(client.peer_address() == listener.name());
        CHECK(client.name() == listener.name());
    }());
}

TEST_CASE("a thousand connections go through one multishot accept and multishot recvs") {
    constexpr int connections = 1000;
    constexpr std::size_t message = 1500;
    raise_descriptor_limit(4 * connections + 64);
    driver d(driver_options{.entries = 4096});
    buffer_ring ring(d.ring(), 1, 4096, 4096);
    int served = 0;
    run(d, [](buffer_ring& ring, int& served) -> task<> {
        tcp_listener listener =
            tcp_listener::bind(socket_address::loopback_v4(), listen_options{.backlog = 4096});
        auto incoming = listener.incoming();
        // The server: every connection echoes through its own multishot recv.
        auto serve = [](tcp_stream s, buffer_ring& ring, int& served) -> task<> {
            recv_stream chunks(s, ring);
            while (auto chunk = co_await chunks.next())
                co_await s.send_all(chunk->bytes());
            ++served;
        };
        auto accept_all = [](accept_stream<tcp_stream>& incoming, buffer_ring& ring, int& served,
                             auto serve) -> task<> {
            for (int i = 0; i < connections; ++i) {
                spawn(serve(co_await incoming.next(), ring, served));
            }
        };
        auto client = [](socket_address to, int i) -> task<> {
            tcp_stream s = co_await tcp_stream::connect(to);
            const auto payload = pattern(message, static_cast<unsigned>(i));
            co_await s.send_all(payload);
            std::vector<std::byte> echoed(message);
            co_await s.recv_exact(echoed);
            CHECK(echoed == payload);
        };
        std::vector<task<>> clients;
        for (int i = 0; i < connections; ++i)
            clients.push_back(client(listener.name(), i));
        co_await when_all(accept_all(incoming, ring, served, serve), when_all(std::move(clients)));
        CHECK(incoming.arms() == 1);
    }(ring, served));
    // The clients closed: every server task saw its end of stream.
    for (int i = 0; i < 1000 && served < connections; ++i)
        d.run_turn(true);
    CHECK(served == connections);
}

TEST_CASE("a multishot recv whose buffer ring runs dry re-arms and loses nothing") {
    driver d;
    buffer_ring ring(d.ring(), 7, 4, 1024); // 4 KiB of buffers for 3 MiB
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const auto payload = pattern(3 * 1024 * 1024, 7);
        auto sender = [](tcp_stream& s, const std::vector<std::byte>& p) -> task<> {
            co_await s.send_all(p);
            co_await s.shutdown(SHUT_WR);
        };
        auto receiver = [](tcp_stream& s, buffer_ring& ring,
                           std::uint64_t& arms) -> task<std::vector<std::byte>> {
            std::vector<std::byte> got;
            recv_stream chunks(s, ring);
            int n = 0;
            while (auto chunk = co_await chunks.next()) {
                got.insert(got.end(), chunk->bytes().begin(), chunk->bytes().end());
                // A slow consumer now and then, so that the kernel fills every buffer.
                if (++n % 64 == 0) co_await sleep_for(1ms);
            }
            arms = chunks.arms();
            co_return got;
        };
        std::uint64_t arms = 0;
        auto [sent, got] = co_await when_all(sender(client, payload), receiver(server, ring, arms));
        CHECK(got.size() == payload.size());
        CHECK(got == payload);
        CHECK(arms > 1); // the ring did run dry (ENOBUFS), and the recv was armed again
    }(ring));
}

TEST_CASE("a chunk held past next() still keeps order when the ring is empty") {
    driver d;
    buffer_ring ring(d.ring(), 2, 2, 512);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const auto payload = pattern(64 * 1024, 3);
        co_await client.send_all(payload);
        co_await client.shutdown(SHUT_WR);
        std::vector<std::byte> got;
        recv_stream chunks(server, ring);
        std::optional<recv_chunk> held;
        while (auto chunk = co_await chunks.next()) {
            if (held) got.insert(got.end(), held->bytes().begin(), held->bytes().end());
            held = std::move(chunk); // one buffer of two stays out while waiting
        }
        if (held) got.insert(got.end(), held->bytes().begin(), held->bytes().end());
        CHECK(got == payload);
    }(ring));
}

TEST_CASE("a refused connection names the address and ECONNREFUSED") {
    const std::uint16_t port = unused_port();
    driver d;
    const auto to = socket_address::loopback_v4(port);
    try {
        run(d, tcp_stream::connect(to));
        FAIL("connected to a closed port");
    } catch (const error& e) {
        CHECK(e.errnum() == ECONNREFUSED);
        CHECK_THAT(e.what(), Catch::Contains("connect 127.0.0.1:" + std::to_string(port) + ": ") &&
                                 Catch::Contains("(ECONNREFUSED)"));
    }
}

TEST_CASE("a peer reset in mid-transfer is ECONNRESET naming the peer") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        co_await client.send_all(pattern(100'000, 1));
        std::vector<std::byte> some(1000);
        co_await server.recv_exact(some);
        // Linger 0: close sends RST (unread data pending would do too).
        const linger abort{1, 0};
        REQUIRE(::setsockopt(server.fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort)) == 0);
        co_await server.close();
        std::vector<std::byte> buf(4096);
        try {
            for (;;) {
                if (co_await client.recv(buf) == 0) break;
            }
            FAIL("no reset seen");
        } catch (const error& e) {
            CHECK(e.errnum() == ECONNRESET);
            CHECK_THAT(e.what(), Catch::Contains("recv " + listener.name().to_string() + ": ") &&
                                     Catch::Contains("(ECONNRESET)"));
        }
    }());
}

TEST_CASE("a connect to a peer that never answers ends with ETIME after its timeout") {
    driver d;
    run(d, []() -> task<> {
        // Backlog 0: the kernel queues one connection and drops further SYNs, so a connect
        // beyond that gets no answer (no iptables needed).
        tcp_listener listener =
            tcp_listener::bind(socket_address::loopback_v4(), listen_options{.backlog = 0});
        std::vector<tcp_stream> fillers;
        bool hung = false;
        for (int i = 0; i < 8 && !hung; ++i) {
            try {
                fillers.push_back(co_await tcp_stream::connect(listener.name(), 300ms));
            } catch (const error& e) {
                CHECK(e.errnum() == ETIME);
                CHECK_THAT(e.what(), Catch::Contains("connect " + listener.name().to_string()) &&
                                         Catch::Contains("(ETIME)"));
                hung = true;
            }
        }
        CHECK(hung);
        CHECK(fillers.size() >= 1);
    }());
}

TEST_CASE("a recv with a timeout ends with ETIME when nothing arrives") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        std::vector<std::byte> buf(16);
        try {
            (void)co_await client.recv(buf).with_timeout(20ms);
            FAIL("received from a silent peer");
        } catch (const error& e) {
            CHECK(e.errnum() == ETIME);
        }
        // The connection is still usable.
        co_await server.send_all(pattern(16, 2));
        co_await client.recv_exact(buf);
        CHECK(buf == pattern(16, 2));
    }());
}

TEST_CASE("a zero-copy send resumes only after its notification") {
    if (test::lacks(opcode::send_zc)) return;
    driver d;
    run(d, [](driver& d) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const auto payload = pattern(64 * 1024, 9);
        const std::uint64_t before = d.stats().cqes_reaped;
        std::size_t sent = 0;
        while (sent < payload.size()) {
            sent += co_await client.send_zc(std::span(payload).subspan(sent));
        }
        // Nothing else was in flight: each send_zc reaped its result and its notification.
        const std::uint64_t reaped = d.stats().cqes_reaped - before;
        CHECK(reaped >= 2);
        CHECK(reaped % 2 == 0);
        std::vector<std::byte> got(payload.size());
        co_await server.recv_exact(got);
        CHECK(got == payload);
    }(d));
}

TEST_CASE("sendmsg and recvmsg gather and scatter") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        char a[] = "hello, ";
        char b[] = "world";
        iovec out[2] = {{a, 7}, {b, 5}};
        msghdr send_msg{};
        send_msg.msg_iov = out;
        send_msg.msg_iovlen = 2;
        const auto r2 = co_await client.sendmsg(send_msg);
        CHECK(r2 == 12);
        char x[5] = {};
        char y[7] = {};
        iovec in[2] = {{x, 5}, {y, 7}};
        msghdr recv_msg{};
        recv_msg.msg_iov = in;
        recv_msg.msg_iovlen = 2;
        std::size_t got = 0;
        while (got < 12) {
            got += co_await server.recvmsg(recv_msg, MSG_WAITALL);
        }
        CHECK(std::string(x, 5) + std::string(y, 7) == "hello, world");
    }());
}

TEST_CASE("socket options can be set and read back") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        tcp_stream s = co_await tcp_stream::connect(listener.name());
        s.set_nodelay(true);
        CHECK(s.nodelay());
        s.set_keepalive(true);
        CHECK(s.keepalive());
        s.set_send_buffer_size(64 * 1024);
        CHECK(s.send_buffer_size() >= 64 * 1024);
        s.set_receive_buffer_size(32 * 1024);
        CHECK(s.receive_buffer_size() >= 32 * 1024);
        CHECK(s.local_address().is_ipv4());
        CHECK(s.peer_address() == listener.name());
    }());
}

TEST_CASE("a listener on a port in use reports EADDRINUSE naming the address") {
    driver d;
    tcp_listener first = tcp_listener::bind(socket_address::loopback_v4());
    try {
        (void)tcp_listener::bind(first.name(), listen_options{.reuse_address = false});
        FAIL("bound twice");
    } catch (const error& e) {
        CHECK(e.errnum() == EADDRINUSE);
        CHECK_THAT(e.what(), Catch::StartsWith("bind " + first.name().to_string() + ": "));
    }
}

TEST_CASE("two listeners share a port with SO_REUSEPORT") {
    driver d;
    const listen_options shared{.reuse_port = true};
    tcp_listener a = tcp_listener::bind(socket_address::loopback_v4(), shared);
    tcp_listener b = tcp_listener::bind(a.name(), shared);
    CHECK(b.name() == a.name());
}

TEST_CASE("using a closed socket is EBADF naming the operation") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        tcp_stream s = co_await tcp_stream::connect(listener.name());
        co_await s.close();
        CHECK_FALSE(s.is_open());
        std::vector<std::byte> buf(4);
        try {
            (void)co_await s.send(buf);
            FAIL("sent on a closed socket");
        } catch (const error& e) {
            CHECK(e.errnum() == EBADF);
            CHECK_THAT(e.what(), Catch::StartsWith("send " + listener.name().to_string() + ": "));
        }
    }());
}

TEST_CASE("recv_exact that meets end of stream says how far it got") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        co_await server.send_all(pattern(10, 1));
        co_await server.shutdown(SHUT_WR);
        std::vector<std::byte> buf(20);
        try {
            co_await client.recv_exact(buf);
            FAIL("read past the end");
        } catch (const error& e) {
            CHECK(e.errnum() == ENODATA);
            CHECK_THAT(e.what(), Catch::Contains("end of file after 10 of 20 bytes"));
        }
    }());
}

TEST_CASE("a cancelled accept stream delivers what came first, then ECANCELED") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto incoming = listener.incoming();
        tcp_stream c1 = co_await tcp_stream::connect(listener.name());
        tcp_stream first = co_await incoming.next();
        CHECK(first.is_open());
        incoming.cancel();
        try {
            (void)co_await incoming.next();
            FAIL("accepted after cancel");
        } catch (const error& e) {
            CHECK(e.errnum() == ECANCELED);
            CHECK_THAT(e.what(), Catch::StartsWith("accept " + listener.name().to_string()));
        }
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a stop request ends a recv stream with ECANCELED") {
    driver d;
    buffer_ring ring(d.ring(), 3, 4, 256);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        auto reader = [](tcp_stream& s, buffer_ring& ring) -> task<int> {
            recv_stream chunks(s, ring);
            try {
                while (co_await chunks.next()) {
                }
            } catch (const error& e) {
                co_return e.errnum();
            }
            co_return 0;
        };
        auto stopper = []() -> task<> { co_await sleep_for(10ms); };
        // when_any stops the reader once the sleep wins.
        const auto r = co_await when_any(reader(server, ring), stopper());
        CHECK(r.index() == 1);
    }(ring));
    CHECK(d.in_flight() == 0);
}

TEST_CASE("destroying armed accept and recv streams is safe, and their late CQEs are released") {
    driver d;
    buffer_ring ring(d.ring(), 4, 4, 256);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        {
            auto incoming = listener.incoming();
            recv_stream chunks(server, ring);
            co_await nop(); // both armed in the kernel
        }
        // A connection and bytes that arrive now meet cancelled (orphaned) operations.
        tcp_stream late = co_await tcp_stream::connect(listener.name());
        co_await client.send_all(pattern(100, 1));
        co_await sleep_for(5ms);
        // The ring got its buffers back: a new stream receives into it.
        recv_stream again(server, ring);
        auto chunk = co_await again.next();
        REQUIRE(chunk);
        CHECK(chunk->size() > 0);
    }(ring));
}

namespace {

// A blocking client on its own thread: sends `rounds` messages of `size` bytes, each after the
// previous one came back whole, and checks every echo.
void ping_pong_client(std::uint16_t port, int rounds, std::size_t size, bool& ok) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0;
    std::vector<std::byte> echoed(size);
    for (int i = 0; ok && i < rounds; ++i) {
        const auto message = pattern(size, static_cast<unsigned>(i));
        ok = ::send(fd, message.data(), size, MSG_NOSIGNAL) == static_cast<ssize_t>(size) &&
             ::recv(fd, echoed.data(), size, MSG_WAITALL) == static_cast<ssize_t>(size) &&
             echoed == message;
    }
    if (fd >= 0) ::close(fd); // end of stream for the server
}

// Echoes with send_then_recv into provided buffers until end of stream; gives the exchanges.
task<int> echo_linked(tcp_stream& s, buffer_ring& ring) {
    int exchanges = 0;
    recv_chunk chunk = co_await s.recv(ring);
    while (chunk.size() > 0) {
        chunk = co_await s.send_then_recv(chunk.bytes(), ring);
        ++exchanges;
    }
    co_return exchanges;
}

// Sends `size` bytes to a peer that reads nothing: the send stays blocked until the peer
// goes.
task<int> blocked_send_then_recv(tcp_stream& s, std::size_t size) {
    const auto reply = pattern(size, 3);
    std::vector<std::byte> buf(64);
    try {
        co_await s.send_then_recv(reply, buf);
    } catch (const error& e) {
        co_return e.errnum();
    }
    co_return 0;
}

} // namespace

TEST_CASE("send_then_recv echoes a request/response loop at one io_uring_enter per exchange") {
    constexpr int rounds = 2000;
    driver d;
    buffer_ring ring(d.ring(), 11, 8, 4096);
    tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
    bool client_ok = false;
    std::thread client(ping_pong_client, listener.name().port(), rounds, 100, std::ref(client_ok));
    const auto [exchanges, enters] = run(d,
                                         [](const tcp_listener& l, buffer_ring& ring,
                                            driver& d) -> task<std::pair<int, std::uint64_t>> {
                                             tcp_stream s = co_await l.accept();
                                             const std::uint64_t before = d.stats().enters;
                                             const int n = co_await echo_linked(s, ring);
                                             co_return std::pair{n, d.stats().enters - before};
                                         }(listener, ring, d));
    client.join();
    CHECK(client_ok);
    CHECK(exchanges == rounds);
    // One enter per exchange (the send's CQE is skipped, the recv's is the one waited for),
    // plus a few for the first recv and the end.
    CHECK(enters <= static_cast<std::uint64_t>(rounds) + 5);
}

TEST_CASE("send_then_recv into the caller's buffer may send from the buffer it receives into") {
    driver d;
    tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
    bool client_ok = false;
    std::thread client(ping_pong_client, listener.name().port(), 300, 70'000, std::ref(client_ok));
    const int exchanges = run(d, [](const tcp_listener& l) -> task<int> {
        tcp_stream s = co_await l.accept();
        std::vector<std::byte> buf(256 * 1024);
        int n = 0;
        std::size_t got = co_await s.recv(buf);
        std::size_t pending = 70'000; // the rest of the current message, then echo it whole
        std::size_t have = got;
        while (got > 0) {
            if (have < pending) {
                got = co_await s.recv(std::span(buf).subspan(have));
                have += got;
                continue;
            }
            have = co_await s.send_then_recv(std::span(buf).first(pending), buf);
            got = have;
            ++n;
        }
        co_return n;
    }(listener));
    client.join();
    CHECK(client_ok);
    CHECK(exchanges == 300);
}

TEST_CASE("send_then_recv gives an empty chunk at end of stream, after sending the reply") {
    driver d;
    buffer_ring ring(d.ring(), 12, 2, 256);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const auto reply = pattern(1000, 5);
        auto peer = [](tcp_stream& s, const std::vector<std::byte>& expected) -> task<> {
            std::vector<std::byte> got(expected.size());
            co_await s.recv_exact(got);
            CHECK(got == expected);
            co_await s.shutdown(SHUT_WR);
        };
        auto exchange = [](tcp_stream& s, buffer_ring& ring,
                           const std::vector<std::byte>& reply) -> task<recv_chunk> {
            co_return co_await s.send_then_recv(reply, ring);
        };
        auto [chunk, done] = co_await when_all(exchange(server, ring, reply), peer(client, reply));
        CHECK(chunk.size() == 0);
        CHECK(chunk.bytes().empty());
    }(ring));
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a send_then_recv whose peer resets mid-reply throws the send's error, not the recv's") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        client.set_receive_buffer_size(4096);
        auto resetter = [](tcp_stream& s) -> task<> {
            std::vector<std::byte> some(1000);
            co_await s.recv_exact(some);
            co_await sleep_for(20ms); // the send is blocked on a full window by now
            co_await s.close();       // unread data: the close sends RST
        };
        auto [errnum, reset] =
            co_await when_all(blocked_send_then_recv(server, 16 * 1024 * 1024), resetter(client));
        CHECK((errnum == ECONNRESET || errnum == EPIPE));
        // Part went before the reset (a short send broke the link, the rest failed): the
        // recv never ran, so its ECANCELED is not what is reported.
        CHECK(errnum != ECANCELED);
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("the error of a failed send names the operation and the peer") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const linger abort{1, 0};
        REQUIRE(::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort)) == 0);
        co_await client.close(); // RST
        co_await sleep_for(5ms);
        std::vector<std::byte> buf(16);
        try {
            (void)co_await server.send_then_recv(pattern(100, 1), buf);
            FAIL("the send went through to a reset peer");
        } catch (const error& e) {
            CHECK((e.errnum() == ECONNRESET || e.errnum() == EPIPE));
            CHECK_THAT(e.what(), Catch::StartsWith("send "));
        }
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a stop request while the send is blocked ends send_then_recv with ECANCELED") {
    driver d;
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        client.set_receive_buffer_size(4096);
        int errnum = -1;
        auto sender = [](tcp_stream& s, int& errnum) -> task<> {
            errnum = co_await blocked_send_then_recv(s, 16 * 1024 * 1024);
        };
        auto stopper = []() -> task<> { co_await sleep_for(20ms); };
        const auto r = co_await when_any(sender(server, errnum), stopper());
        CHECK(r.index() == 1);
        CHECK(errnum == ECANCELED);
    }());
    // The coroutine resumed only after the kernel answered for both requests.
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a stop request while the recv waits ends send_then_recv with ECANCELED") {
    driver d;
    buffer_ring ring(d.ring(), 13, 2, 256);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        const auto reply = pattern(3000, 9);
        int errnum = -1;
        auto exchanger = [](tcp_stream& s, buffer_ring& ring, const std::vector<std::byte>& reply,
                            int& errnum) -> task<> {
            try {
                (void)co_await s.send_then_recv(reply, ring);
                errnum = 0;
            } catch (const error& e) {
                errnum = e.errnum();
                CHECK_THAT(e.what(), Catch::StartsWith("recv "));
            }
        };
        auto reader = [](tcp_stream& s, std::size_t size) -> task<std::vector<std::byte>> {
            std::vector<std::byte> got(size);
            co_await s.recv_exact(got);
            co_await sleep_for(10ms); // the peer sends nothing: the recv waits
            co_return got;
        };
        const auto r =
            co_await when_any(exchanger(server, ring, reply, errnum), reader(client, reply.size()));
        REQUIRE(r.index() == 1);
        CHECK(std::get<1>(r) == reply);
        CHECK(errnum == ECANCELED);
    }(ring));
    CHECK(d.in_flight() == 0);
}

TEST_CASE("send_then_recv on a ring with no buffer left sends the reply, then throws ENOBUFS") {
    driver d;
    buffer_ring ring(d.ring(), 14, 1, 256);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto [client, server] = co_await connected_pair(listener);
        co_await client.send_all(pattern(10, 1));
        recv_chunk held = co_await server.recv(ring); // the ring's only buffer
        REQUIRE(held.size() == 10);
        auto peer = [](tcp_stream& s, std::span<const std::byte> expected) -> task<> {
            std::vector<std::byte> got(expected.size());
            co_await s.recv_exact(got);
            CHECK(std::ranges::equal(got, expected));
            co_await s.send_all(pattern(10, 2));
        };
        auto exchange = [](tcp_stream& s, buffer_ring& ring,
                           std::span<const std::byte> reply) -> task<int> {
            try {
                (void)co_await s.send_then_recv(reply, ring);
            } catch (const error& e) {
                co_return e.errnum();
            }
            co_return 0;
        };
        auto [errnum, done] =
            co_await when_all(exchange(server, ring, held.bytes()), peer(client, held.bytes()));
        CHECK(errnum == ENOBUFS);
        held.release();
        recv_chunk next = co_await server.recv(ring); // the data waited in the socket
        CHECK(std::ranges::equal(next.bytes(), pattern(10, 2)));
    }(ring));
}

// ---- Direct streams: accepted into the registered file table --------------------------------
// Direct and multishot direct accept need 5.19, the driver's own floor: nothing to skip.

TEST_CASE("accept_direct puts a connection in a slot, and its bytes echo back byte for byte") {
    driver d;
    registrar(d.ring()).register_files_sparse(8);
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        for (const std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{65536},
                                       std::size_t{5} * 1024 * 1024 + 3}) {
            tcp_stream client = co_await tcp_stream::connect(listener.name());
            const int before = open_descriptors();
            direct_stream accepted = co_await listener.accept_direct();
            // In the ring's table only: the process has no descriptor more.
            CHECK(open_descriptors() == before);
            CHECK(accepted.is_open());
            CHECK(accepted.slot().index < 8);
            CHECK(accepted.ref().fixed());
            CHECK(accepted.name() == client.local_address());
            spawn(echo_back(std::move(accepted)));
            co_await exchange(client, pattern(size, static_cast<unsigned>(size)));
        }
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a direct stream receives what a client sends, and its timeouts, stop requests and "
          "errors work as a tcp_stream's") {
    driver d;
    registrar(d.ring()).register_files_sparse(4);
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        tcp_stream client = co_await tcp_stream::connect(listener.name());
        direct_stream server = co_await listener.accept_direct();
        const std::string peer = client.local_address().to_string();
        CHECK(server.describe() == peer);
        // The client's bytes, through recv on the slot, byte for byte.
        const auto request = pattern(300'000, 5);
        std::vector<std::byte> got;
        auto sender = [](tcp_stream& c, const std::vector<std::byte>& p) -> task<> {
            co_await c.send_all(p);
        };
        auto receiver = [](direct_stream& s, std::vector<std::byte>& got,
                           std::size_t size) -> task<> {
            std::vector<std::byte> buf(4096);
            while (got.size() < size) {
                const std::size_t n = co_await s.recv(buf);
                REQUIRE(n > 0);
                got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
        };
        co_await when_all(sender(client, request), receiver(server, got, request.size()));
        CHECK(got == request);
        // with_timeout: ETIME naming the peer, and the stream goes on.
        std::vector<std::byte> buf(16);
        try {
            (void)co_await server.recv(buf).with_timeout(20ms);
            FAIL("received from a silent peer");
        } catch (const error& e) {
            CHECK(e.errnum() == ETIME);
            CHECK_THAT(e.what(), Catch::StartsWith("recv " + peer + ": "));
        }
        // A stop request (when_any stops the recv once the sleep wins): ECANCELED.
        auto reader = [](direct_stream& s) -> task<int> {
            std::byte b[8];
            try {
                (void)co_await s.recv(b);
            } catch (const error& e) {
                co_return e.errnum();
            }
            co_return 0;
        };
        auto stopper = []() -> task<> { co_await sleep_for(10ms); };
        const auto r = co_await when_any(reader(server), stopper());
        CHECK(r.index() == 1);
        // send_then_recv and recv_exact on the slot.
        co_await client.send_all(pattern(16, 2));
        const std::size_t n = co_await server.send_then_recv(pattern(100, 3), buf);
        CHECK(n == 16);
        CHECK(buf == pattern(16, 2));
        std::vector<std::byte> reply(100);
        co_await client.recv_exact(reply);
        CHECK(reply == pattern(100, 3));
        // End of stream: recv_exact says how far it got, naming the peer.
        co_await client.send_all(pattern(10, 4));
        co_await client.shutdown(SHUT_WR);
        std::vector<std::byte> twenty(20);
        try {
            co_await server.recv_exact(twenty);
            FAIL("read past the end");
        } catch (const error& e) {
            CHECK(e.errnum() == ENODATA);
            CHECK_THAT(e.what(), Catch::StartsWith("recv_exact " + peer +
                                                   ": end of file after "
                                                   "10 of 20 bytes"));
        }
        co_await server.shutdown(SHUT_WR);
        std::byte extra{};
        const std::size_t at_end = co_await client.recv(std::span(&extra, 1));
        CHECK(at_end == 0);
        co_await server.close();
        CHECK_FALSE(server.is_open());
        // An op on the closed stream: the kernel's EBADF (the slot is ~0, never "fd 0").
        try {
            (void)co_await server.send(buf);
            FAIL("sent on a closed direct stream");
        } catch (const error& e) {
            CHECK(e.errnum() == EBADF);
            CHECK_THAT(e.what(), Catch::StartsWith("send " + peer + ": "));
        }
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a multishot recv into a buffer ring streams a direct stream's bytes in order") {
    driver d;
    registrar(d.ring()).register_files_sparse(4);
    buffer_ring ring(d.ring(), 2, 64, 4096);
    run(d, [](buffer_ring& ring) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        tcp_stream client = co_await tcp_stream::connect(listener.name());
        direct_stream server = co_await listener.accept_direct();
        const auto sent = pattern(1'000'000, 11); // more than the ring holds: buffers recycle
        auto receive = [](direct_stream& s, buffer_ring& ring) -> task<std::vector<std::byte>> {
            std::vector<std::byte> got;
            recv_stream chunks(s, ring);
            while (auto chunk = co_await chunks.next())
                got.insert(got.end(), chunk->bytes().begin(), chunk->bytes().end());
            co_return got;
        };
        auto send = [](tcp_stream& c, std::span<const std::byte> bytes) -> task<> {
            co_await c.send_all(bytes);
            co_await c.shutdown(SHUT_WR);
        };
        auto [got, done] = co_await when_all(receive(server, ring), send(client, sent));
        CHECK(got == sent);
    }(ring));
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a multishot direct accept serves a hundred connections, each in its own slot") {
    static constexpr int connections = 100;
    static constexpr std::size_t message = 3000;
    driver d(driver_options{.entries = 1024});
    registrar(d.ring()).register_files_sparse(connections + 8);
    int served = 0;
    run(d, [](int& served) -> task<> {
        tcp_listener listener =
            tcp_listener::bind(socket_address::loopback_v4(), listen_options{.backlog = 1024});
        auto incoming = listener.incoming_direct();
        auto serve = [](direct_stream s, int& served) -> task<> {
            co_await echo_back(std::move(s));
            ++served;
        };
        auto accept_all = [](accept_stream<direct_stream>& incoming, int& served,
                             auto serve) -> task<std::set<unsigned>> {
            std::set<unsigned> slots;
            for (int i = 0; i < connections; ++i) {
                direct_stream s = co_await incoming.next();
                REQUIRE(s.is_open());
                slots.insert(s.slot().index);
                // No address from a multishot accept: errors name the slot.
                CHECK(s.describe() == "direct socket slot " + std::to_string(s.slot().index));
                spawn(serve(std::move(s), served));
            }
            co_return slots;
        };
        auto client = [](socket_address to, int i) -> task<> {
            tcp_stream s = co_await tcp_stream::connect(to);
            const auto payload = pattern(message, static_cast<unsigned>(i));
            co_await s.send_all(payload);
            std::vector<std::byte> echoed(message);
            co_await s.recv_exact(echoed);
            CHECK(echoed == payload);
        };
        std::vector<task<>> clients;
        for (int i = 0; i < connections; ++i)
            clients.push_back(client(listener.name(), i));
        auto [slots, done] =
            co_await when_all(accept_all(incoming, served, serve), when_all(std::move(clients)));
        CHECK(slots.size() == connections); // all in slots at once, none shared
        CHECK(incoming.arms() == 1);
    }(served));
    // The clients closed: every server task saw its end of stream.
    for (int i = 0; i < 1000 && served < connections; ++i)
        d.run_turn(true);
    CHECK(served == connections);
}

TEST_CASE("a direct accept without a registered file table says there is none") {
    driver d; // no register_files_sparse
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        const std::string where = "accept " + listener.name().to_string() + ": ";
        tcp_stream client = co_await tcp_stream::connect(listener.name());
        try {
            direct_stream s = co_await listener.accept_direct();
            FAIL("accepted into a table that does not exist");
        } catch (const error& e) {
            CHECK(e.errnum() == ENXIO);
            CHECK_THAT(e.what(), Catch::StartsWith(where + "no registered file table"));
        }
        tcp_stream other = co_await tcp_stream::connect(listener.name());
        auto incoming = listener.incoming_direct();
        try {
            direct_stream s = co_await incoming.next();
            FAIL("accepted into a table that does not exist");
        } catch (const error& e) {
            CHECK(e.errnum() == ENXIO);
            CHECK_THAT(e.what(), Catch::StartsWith(where + "no registered file table"));
        }
        incoming.cancel();
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("closing a direct stream frees its slot for the next accept") {
    driver d;
    registrar(d.ring()).register_files_sparse(1);
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        std::vector<tcp_stream> clients;
        for (int i = 0; i < 3; ++i) {
            // With one slot, the next accept finds it free only if the last one was closed.
            clients.push_back(co_await tcp_stream::connect(listener.name()));
            direct_stream s = co_await listener.accept_direct();
            CHECK(s.slot() == registered_fd{0});
            co_await s.close();
            CHECK_FALSE(s.is_open());
        }
        for (int i = 0; i < 3; ++i) {
            // The destructor closes without waiting; the slot is free for the next one too.
            clients.push_back(co_await tcp_stream::connect(listener.name()));
            direct_stream s = co_await listener.accept_direct();
            CHECK(s.slot() == registered_fd{0});
        }
        // Taken: the table is full now.
        clients.push_back(co_await tcp_stream::connect(listener.name()));
        direct_stream kept = co_await listener.accept_direct();
        clients.push_back(co_await tcp_stream::connect(listener.name()));
        try {
            direct_stream s = co_await listener.accept_direct();
            FAIL("accepted into a full table");
        } catch (const error& e) {
            CHECK(e.errnum() == ENFILE);
            CHECK_THAT(e.what(), Catch::Contains("the registered file table is full"));
        }
        // A moved-from stream owns nothing; the one it moved into frees the slot.
        direct_stream moved = std::move(kept);
        CHECK_FALSE(kept.is_open());
        moved = direct_stream();
        clients.push_back(co_await tcp_stream::connect(listener.name()));
        direct_stream again = co_await listener.accept_direct();
        CHECK(again.slot() == registered_fd{0});
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a multishot direct accept that meets a full table throws ENFILE and re-arms") {
    driver d;
    registrar(d.ring()).register_files_sparse(2);
    run(d, []() -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        auto incoming = listener.incoming_direct();
        std::vector<tcp_stream> clients;
        std::vector<direct_stream> held;
        for (int i = 0; i < 2; ++i) {
            clients.push_back(co_await tcp_stream::connect(listener.name()));
            held.push_back(co_await incoming.next());
        }
        clients.push_back(co_await tcp_stream::connect(listener.name()));
        try {
            direct_stream s = co_await incoming.next();
            FAIL("accepted into a full table");
        } catch (const error& e) {
            CHECK(e.errnum() == ENFILE);
            CHECK_THAT(e.what(), Catch::Contains("the registered file table is full"));
        }
        CHECK(incoming.arms() == 1);
        // A slot frees; the next next() arms the accept again and a new client gets it.
        held.pop_back();
        clients.push_back(co_await tcp_stream::connect(listener.name()));
        auto take_one = [](accept_stream<direct_stream>& in) -> task<bool> {
            direct_stream s = co_await in.next();
            co_return s.is_open();
        };
        auto give_up = []() -> task<> { co_await sleep_for(2s); };
        const auto r = co_await when_any(take_one(incoming), give_up());
        REQUIRE(r.index() == 0);
        CHECK(std::get<0>(r));
        CHECK(incoming.arms() == 2);
        incoming.cancel();
        try {
            (void)co_await incoming.next();
            FAIL("accepted after cancel");
        } catch (const error& e) {
            CHECK(e.errnum() == ECANCELED);
        }
        // The kernel accepts before it looks for a slot: the connection that met the full
        // table was closed, and its client sees end of stream.
        std::byte b[1];
        const std::size_t n = co_await clients[2].recv(b).with_timeout(2s);
        CHECK(n == 0);
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("send_zc sends from a registered buffer on a plain and a direct stream") {
    if (test::lacks(opcode::send_zc)) return;
    driver d;
    registrar reg(d.ring());
    reg.register_files_sparse(2);
    std::vector<std::byte> memory = pattern(128 * 1024, 11);
    const iovec iov{memory.data(), memory.size()};
    const auto buffers = reg.register_buffers(std::span(&iov, 1));
    run(d, [](registered_buffer buf, const std::vector<std::byte>& memory) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        tcp_stream plain = co_await tcp_stream::connect(listener.name());
        direct_stream direct = co_await listener.accept_direct();
        auto send_from = [](auto& s, registered_buffer buf) -> task<> {
            std::size_t sent = 0;
            while (sent < buf.size())
                sent += co_await s.send_zc(buf.subspan(sent));
        };
        auto receive = [](auto& s, std::size_t size) -> task<std::vector<std::byte>> {
            std::vector<std::byte> got(size);
            co_await s.recv_exact(got);
            co_return got;
        };
        {
            auto [sent, got] =
                co_await when_all(send_from(direct, buf), receive(plain, buf.size()));
            CHECK(got == memory);
        }
        {
            auto [sent, got] =
                co_await when_all(send_from(plain, buf.subspan(1000, 5000)), receive(direct, 5000));
            CHECK(std::equal(got.begin(), got.end(), memory.begin() + 1000));
        }
    }(buffers[0], memory));
}
