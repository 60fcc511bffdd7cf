// Tests of udp.hpp and the datagram half of socket.cpp, over 127.0.0.1 and ::1.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace tram;
using namespace std::chrono_literals;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string text_of(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void round_trip(const socket_address& local) {
    driver d;
    run(d, [](socket_address local) -> task<> {
        udp_socket a = udp_socket::bind(local);
        udp_socket b = udp_socket::bind(local);
        CHECK(a.name().port() != 0);
        const auto r1 = co_await a.send_to(bytes_of("ping"), b.name());
        CHECK(r1 == 4);
        std::vector<std::byte> buf(64);
        const datagram got = co_await b.recv_from(buf);
        CHECK(text_of(std::span(buf).first(got.size)) == "ping");
        CHECK(got.from == a.name());
        CHECK_FALSE(got.truncated);
        const auto r2 = co_await b.send_to(bytes_of("pong"), got.from);
        CHECK(r2 == 4);
        const datagram back = co_await a.recv_from(buf);
        CHECK(text_of(std::span(buf).first(back.size)) == "pong");
        CHECK(back.from == b.name());
    }(local));
}

} // namespace

TEST_CASE("UDP datagrams go to and come from addresses over IPv4") {
    round_trip(socket_address::loopback_v4());
}

TEST_CASE("UDP datagrams go to and come from addresses over IPv6") {
    round_trip(socket_address::loopback_v6());
}

TEST_CASE("a connected UDP socket sends and receives with its peer") {
    driver d;
    run(d, []() -> task<> {
        udp_socket server = udp_socket::bind(socket_address::loopback_v4());
        udp_socket client = udp_socket::open(AF_INET);
        client.connect(server.name());
        CHECK(client.name() == server.name());
        const auto r3 = co_await client.send(bytes_of("hello"));
        CHECK(r3 == 5);
        std::vector<std::byte> buf(16);
        const datagram got = co_await server.recv_from(buf);
        CHECK(text_of(std::span(buf).first(got.size)) == "hello");
        server.connect(got.from);
        const auto r4 = co_await server.send(bytes_of("world!"));
        CHECK(r4 == 6);
        const auto r5 = co_await client.recv(buf);
        CHECK(r5 == 6);
        CHECK(text_of(std::span(buf).first(6)) == "world!");
    }());
}

TEST_CASE("a datagram larger than the buffer is reported truncated") {
    driver d;
    run(d, []() -> task<> {
        udp_socket a = udp_socket::bind(socket_address::loopback_v4());
        udp_socket b = udp_socket::bind(socket_address::loopback_v4());
        (void)co_await a.send_to(bytes_of("0123456789"), b.name());
        std::vector<std::byte> small(4);
        const datagram got = co_await b.recv_from(small);
        CHECK(got.truncated);
        CHECK(text_of(small) == "0123");
    }());
}

TEST_CASE("UDP sendmsg and recvmsg carry several buffers as one datagram") {
    driver d;
    run(d, []() -> task<> {
        udp_socket a = udp_socket::bind(socket_address::loopback_v4());
        udp_socket b = udp_socket::bind(socket_address::loopback_v4());
        a.connect(b.name());
        char x[] = "abc";
        char y[] = "defg";
        iovec out[2] = {{x, 3}, {y, 4}};
        msghdr m{};
        m.msg_iov = out;
        m.msg_iovlen = 2;
        const auto r6 = co_await a.sendmsg(m);
        CHECK(r6 == 7);
        char in1[2] = {};
        char in2[8] = {};
        iovec in[2] = {{in1, 2}, {in2, 8}};
        sockaddr_storage from{};
        msghdr r{};
        r.msg_name = &from;
        r.msg_namelen = sizeof(from);
        r.msg_iov = in;
        r.msg_iovlen = 2;
        const auto r7 = co_await b.recvmsg(r);
        CHECK(r7 == 7);
        CHECK(std::string(in1, 2) + std::string(in2, 5) == "abcdefg");
        CHECK(socket_address::from(reinterpret_cast<sockaddr*>(&from), r.msg_namelen) ==
              a.local_address());
    }());
}

TEST_CASE("a UDP receive can be cancelled by a timeout") {
    driver d;
    run(d, []() -> task<> {
        udp_socket a = udp_socket::bind(socket_address::loopback_v4());
        std::vector<std::byte> buf(8);
        try {
            (void)co_await a.recv_from(buf).with_timeout(10ms);
            FAIL("received from nobody");
        } catch (const error& e) {
            CHECK(e.errnum() == ETIME);
            CHECK_THAT(e.what(), Catch::StartsWith("recv_from " + a.name().to_string() + ": "));
        }
    }());
}

TEST_CASE("a UDP send to an unreachable family is an error naming the destination") {
    driver d;
    run(d, []() -> task<> {
        udp_socket a = udp_socket::bind(socket_address::loopback_v4());
        const auto v6 = socket_address::loopback_v6(9);
        try {
            (void)co_await a.send_to(bytes_of("x"), v6);
            FAIL("sent an IPv6 datagram from an IPv4 socket");
        } catch (const error& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("send_to [::1]:9: "));
        }
    }());
}
