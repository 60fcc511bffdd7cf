// Tests of unix_socket.hpp: Unix stream echo (paths in a temporary directory, and abstract
// names), listeners, datagrams and socketpairs.
#include <tram/runtime.hpp>

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>
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

std::span<const std::byte> bytes_of(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string text_of(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

task<> echo_back(unix_stream s) {
    std::vector<std::byte> buf(64 * 1024);
    for (;;) {
        const std::size_t n = co_await s.recv(buf);
        if (n == 0) break;
        co_await s.send_all(std::span(buf).first(n));
    }
}

task<> send_and_finish(unix_stream& s, const std::vector<std::byte>& payload) {
    co_await s.send_all(payload);
    co_await s.shutdown(SHUT_WR);
}

void echo_at(const socket_address& where) {
    driver d;
    run(d, [](socket_address where) -> task<> {
        unix_listener listener = unix_listener::bind(where);
        for (const std::size_t size : {std::size_t{1}, std::size_t{4096}, std::size_t{3} << 20}) {
            unix_stream client = co_await unix_stream::connect(where);
            spawn(echo_back(co_await listener.accept()));
            const auto payload = pattern(size, static_cast<unsigned>(size));
            std::vector<std::byte> echoed(size);
            co_await when_all(send_and_finish(client, payload), client.recv_exact(echoed));
            CHECK(echoed == payload);
        }
    }(where));
}

} // namespace

TEST_CASE("an echo over a Unix socket at a path returns payloads byte for byte") {
    test::temp_dir dir;
    echo_at(socket_address::unix_path(dir / "echo.sock"));
}

TEST_CASE("an echo over an abstract Unix socket returns payloads byte for byte") {
    echo_at(socket_address::parse("@tram-unix-test-" + std::to_string(::getpid())));
}

TEST_CASE("a Unix listener's connections come through a multishot accept") {
    test::temp_dir dir;
    const auto where = socket_address::unix_path(dir / "multi.sock");
    driver d;
    run(d, [](socket_address where) -> task<> {
        unix_listener listener = unix_listener::bind(where);
        auto incoming = listener.incoming();
        std::vector<unix_stream> clients;
        for (int i = 0; i < 10; ++i)
            clients.push_back(co_await unix_stream::connect(where));
        for (int i = 0; i < 10; ++i) {
            unix_stream s = co_await incoming.next();
            co_await s.send_all(bytes_of("hi"));
        }
        for (auto& c : clients) {
            std::vector<std::byte> buf(2);
            co_await c.recv_exact(buf);
            CHECK(text_of(buf) == "hi");
        }
    }(where));
}

TEST_CASE("a socketpair of streams carries bytes both ways") {
    driver d;
    run(d, []() -> task<> {
        auto [a, b] = unix_stream::pair();
        co_await a.send_all(bytes_of("left"));
        co_await b.send_all(bytes_of("right"));
        std::vector<std::byte> four(4);
        std::vector<std::byte> five(5);
        co_await b.recv_exact(four);
        co_await a.recv_exact(five);
        CHECK(text_of(four) == "left");
        CHECK(text_of(five) == "right");
        co_await a.close();
        const auto r1 = co_await b.recv(five);
        CHECK(r1 == 0);
    }());
}

TEST_CASE("a socketpair of datagrams keeps message boundaries") {
    driver d;
    run(d, []() -> task<> {
        auto [a, b] = unix_datagram::pair();
        (void)co_await a.send(bytes_of("one"));
        (void)co_await a.send(bytes_of("three"));
        std::vector<std::byte> buf(16);
        const std::size_t first = co_await b.recv(buf);
        CHECK(text_of(std::span(buf).first(first)) == "one");
        const std::size_t second = co_await b.recv(buf);
        CHECK(text_of(std::span(buf).first(second)) == "three");
    }());
}

TEST_CASE("Unix datagrams go to a bound socket and name their sender") {
    test::temp_dir dir;
    driver d;
    run(d, [](std::string server_path, std::string client_path) -> task<> {
        unix_datagram server = unix_datagram::bind(socket_address::unix_path(server_path));
        unix_datagram client = unix_datagram::bind(socket_address::unix_path(client_path));
        const auto r2 = co_await client.send_to(bytes_of("query"), server.name());
        CHECK(r2 == 5);
        std::vector<std::byte> buf(32);
        const datagram got = co_await server.recv_from(buf);
        CHECK(text_of(std::span(buf).first(got.size)) == "query");
        CHECK(got.from.to_string() == client_path);
        (void)co_await server.send_to(bytes_of("answer"), got.from);
        const datagram back = co_await client.recv_from(buf);
        CHECK(text_of(std::span(buf).first(back.size)) == "answer");
    }(dir / "server.sock", dir / "client.sock"));
}

TEST_CASE("connecting to a missing Unix socket names its path") {
    test::temp_dir dir;
    const std::string path = dir / "missing.sock";
    driver d;
    try {
        (void)run(d, unix_stream::connect(socket_address::unix_path(path)));
        FAIL("connected to nothing");
    } catch (const error& e) {
        CHECK(e.errnum() == ENOENT);
        CHECK_THAT(e.what(),
                   Catch::StartsWith("connect " + path + ": ") && Catch::Contains("(ENOENT)"));
    }
}

TEST_CASE("binding a Unix listener where a file exists is EADDRINUSE naming the path") {
    test::temp_dir dir;
    const std::string path = dir.write_file("taken", "x");
    driver d;
    try {
        (void)unix_listener::bind(socket_address::unix_path(path));
        FAIL("bound over a file");
    } catch (const error& e) {
        CHECK(e.errnum() == EADDRINUSE);
        CHECK_THAT(e.what(), Catch::StartsWith("bind " + path + ": "));
    }
}
