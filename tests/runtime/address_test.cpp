// Tests of runtime/src/address.cpp: parsing and formatting IPv4, IPv6 and Unix addresses, and
// the errors for bad input.
#include <tram/address.hpp>
#include <tram/error.hpp>

#include <catch2/catch.hpp>

#include <net/if.h>

#include <string>

using namespace tram;

namespace {

// The EINVAL error that parsing `text` throws.
std::string parse_error(const std::string& text) {
    try {
        (void)socket_address::parse(text);
    } catch (const error& e) {
        CHECK(e.errnum() == EINVAL);
        return e.what();
    }
    FAIL("parsed \"" << text << "\"");
    return {};
}

} // namespace

TEST_CASE("an IPv4 address parses and formats back") {
    const auto a = socket_address::parse("127.0.0.1:8080");
    CHECK(a.is_ipv4());
    CHECK(a.family() == AF_INET);
    CHECK(a.port() == 8080);
    CHECK(a.size() == sizeof(sockaddr_in));
    CHECK(a.to_string() == "127.0.0.1:8080");
    CHECK(a == socket_address::loopback_v4(8080));
    CHECK(socket_address::parse("0.0.0.0:0") == socket_address::any_v4());
}

TEST_CASE("an IPv6 address parses in brackets and formats back") {
    const auto a = socket_address::parse("[::1]:443");
    CHECK(a.is_ipv6());
    CHECK(a.port() == 443);
    CHECK(a.size() == sizeof(sockaddr_in6));
    CHECK(a.to_string() == "[::1]:443");
    CHECK(a == socket_address::loopback_v6(443));
    CHECK(socket_address::parse("[2001:db8::7]:65535").to_string() == "[2001:db8::7]:65535");
    CHECK(socket_address::parse("[::]:1") == socket_address::any_v6(1));
}

TEST_CASE("an IPv6 scope names an interface") {
    const unsigned lo = ::if_nametoindex("lo");
    REQUIRE(lo != 0);
    const auto a = socket_address::parse("[fe80::1%lo]:80");
    CHECK(reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_scope_id == lo);
    CHECK(a.to_string() == "[fe80::1%lo]:80");
    CHECK(socket_address::parse("[fe80::1%" + std::to_string(lo) + "]:80") == a);
}

TEST_CASE("Unix addresses parse as paths and abstract names") {
    const auto path = socket_address::parse("/tmp/tram.sock");
    CHECK(path.is_unix());
    CHECK(path.to_string() == "/tmp/tram.sock");
    CHECK(path.port() == 0);
    const auto relative = socket_address::parse("unix:run/x.sock");
    CHECK(relative.to_string() == "unix:run/x.sock");
    CHECK(socket_address::parse(relative.to_string()) == relative); // reads back as it was
    const auto abstract = socket_address::parse("@tram-test");
    CHECK(abstract.is_unix());
    CHECK(abstract.to_string() == "@tram-test");
    // No trailing NUL for an abstract name: the length says where it ends.
    CHECK(abstract.size() == offsetof(sockaddr_un, sun_path) + 10);
    CHECK(socket_address::unix_path("@tram-test") == abstract);
}

TEST_CASE("with_port changes an IP address's port only") {
    CHECK(socket_address::loopback_v4().with_port(9).to_string() == "127.0.0.1:9");
    CHECK(socket_address::loopback_v6().with_port(9).to_string() == "[::1]:9");
    CHECK(socket_address::parse("/x").with_port(9).to_string() == "/x");
}

TEST_CASE("a copied raw address compares equal, and an empty one says so") {
    const auto a = socket_address::parse("10.1.2.3:4");
    CHECK(socket_address::from(a.data(), a.size()) == a);
    CHECK(socket_address{}.empty());
    CHECK(socket_address{}.to_string() == "(none)");
    CHECK_THROWS_AS(socket_address::from(a.data(), sizeof(sockaddr_storage) + 1), error);
}

TEST_CASE("bad addresses are EINVAL errors that quote the input and say what is wrong") {
    CHECK_THAT(parse_error(""), Catch::Contains("parse address \"\": empty address"));
    CHECK_THAT(parse_error("localhost:80"), Catch::Contains("\"localhost:80\"") &&
                                                Catch::Contains("resolve()") &&
                                                Catch::Contains("(EINVAL)"));
    CHECK_THAT(parse_error("1.2.3.4"), Catch::Contains("expected host:port"));
    CHECK_THAT(parse_error("1.2.3.4:"), Catch::Contains("port is not a number"));
    CHECK_THAT(parse_error("1.2.3.4:65536"), Catch::Contains("port is not a number"));
    CHECK_THAT(parse_error("1.2.3.4:+80"), Catch::Contains("port is not a number"));
    CHECK_THAT(parse_error("1.2.3:80"), Catch::Contains("not a numeric IPv4 address"));
    CHECK_THAT(parse_error(":80"), Catch::Contains("empty host"));
    CHECK_THAT(parse_error("::1:80"), Catch::Contains("needs brackets"));
    CHECK_THAT(parse_error("[::1]80"), Catch::Contains("expected ':port' after ']'"));
    CHECK_THAT(parse_error("[::1:80"), Catch::Contains("missing ']'"));
    CHECK_THAT(parse_error("[1.2.3.4]:80"), Catch::Contains("not a numeric IPv6 address"));
    CHECK_THAT(parse_error("[fe80::1%nosuchif0]:80"),
               Catch::Contains("\"[fe80::1%nosuchif0]:80\""));
    CHECK_THAT(parse_error("/" + std::string(200, 'x')), Catch::Contains("longer than 107 bytes"));
    CHECK_THAT(parse_error("unix:"), Catch::Contains("empty Unix socket path"));
}
