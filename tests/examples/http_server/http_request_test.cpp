// Tests of examples/http_server/http_request.cpp: the request head parser, the target to path
// mapping and the Range header, as pure functions.
#include "http_request.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using http::parse_status;
using http::target_status;

namespace {

constexpr std::size_t cap = 8192;

parse_status parse(std::string_view text, http::request& r) {
    return http::parse_request(text, cap, r);
}

target_status to_path(std::string_view target, std::string& path) {
    return http::target_to_path(target, path);
}

} // namespace

TEST_CASE("a complete GET head parses into method, target, version and head size") {
    http::request r;
    const std::string text =
        "GET /a/b.txt?x=1 HTTP/1.1\r\nHost: example\r\nRange: bytes=1-2\r\n\r\nNEXT";
    REQUIRE(parse(text, r) == parse_status::complete);
    CHECK(r.method == "GET");
    CHECK(r.target == "/a/b.txt?x=1");
    CHECK(r.minor_version == 1);
    CHECK(r.keep_alive);
    CHECK_FALSE(r.has_body);
    CHECK(r.range == "bytes=1-2");
    CHECK(r.head_size == text.size() - 4);
}

TEST_CASE("a head cut anywhere is incomplete, never an error") {
    const std::string text = "GET /index.html HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    for (std::size_t n = 0; n < text.size(); ++n) {
        http::request r;
        INFO(n);
        CHECK(parse(std::string_view(text).substr(0, n), r) == parse_status::incomplete);
    }
}

TEST_CASE("bare LF line ends and leading empty lines are accepted") {
    http::request r;
    REQUIRE(parse("\r\n\nGET / HTTP/1.1\nHost: x\n\n", r) == parse_status::complete);
    CHECK(r.target == "/");
    CHECK(r.head_size == 27);
}

TEST_CASE("HTTP/1.0 closes unless it asks for keep-alive; Connection: close closes 1.1") {
    http::request r;
    REQUIRE(parse("GET / HTTP/1.0\r\n\r\n", r) == parse_status::complete);
    CHECK_FALSE(r.keep_alive);
    REQUIRE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", r) == parse_status::complete);
    CHECK(r.keep_alive);
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", r) ==
            parse_status::complete);
    CHECK_FALSE(r.keep_alive);
}

TEST_CASE("a body is announced by Content-Length above 0 or by Transfer-Encoding") {
    http::request r;
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", r) ==
            parse_status::complete);
    CHECK_FALSE(r.has_body);
    CHECK(r.content_length == 0);
    REQUIRE(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", r) ==
            parse_status::complete);
    CHECK(r.has_body);
    CHECK(r.content_length == 12);
    CHECK_FALSE(r.chunked);
    REQUIRE(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", r) ==
            parse_status::complete);
    CHECK(r.has_body);
    CHECK(r.chunked);
    CHECK(r.content_length == 0);
    // The final coding decides, across fields and empty list elements.
    REQUIRE(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                  "Transfer-Encoding: Chunked ,\r\n\r\n",
                  r) == parse_status::complete);
    CHECK(r.chunked);
    // The same bytes whether the head ends its input or a body follows it.
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /", r) ==
            parse_status::complete);
    CHECK(r.content_length == 5);
    CHECK(r.head_size == 46);
}

TEST_CASE("malformed heads are bad requests") {
    for (const char* text : {
             "GET\r\n\r\n",
             "GET /\r\n\r\n",
             "GET / HTTP/1.1\r\n\r\n",                           // no Host
             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",     // two Hosts
             "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", // space in a name
             "GET / HTTP/1.1\r\nHost: x\r\nName : v\r\n\r\n",    // space before colon
             "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",     // obs-fold
             "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
             // A final coding other than chunked: no way to find the body's end (RFC 9112 6.3).
             "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             "Transfer-Encoding: gzip\r\n\r\n",
             "GET / http/1.1\r\nHost: x\r\n\r\n",
             "GET / HTTP/0.9\r\n\r\n",
             "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
             "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
             "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
         }) {
        http::request r;
        INFO(text);
        CHECK(parse(text, r) == parse_status::bad_request);
    }
}

TEST_CASE("HTTP/2 and later as text are not supported; later 1.x minors are 1.1") {
    http::request r;
    CHECK(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n", r) == parse_status::version_not_supported);
    REQUIRE(parse("GET / HTTP/1.7\r\nHost: x\r\n\r\n", r) == parse_status::complete);
    CHECK(r.minor_version == 1);
}

TEST_CASE("a head over the cap is too large, complete or not") {
    http::request r;
    const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(cap, 'a');
    CHECK(parse(big, r) == parse_status::header_too_large);
    CHECK(parse(big + "\r\n\r\n", r) == parse_status::header_too_large);
    CHECK(parse(std::string(cap + 10, '\n'), r) == parse_status::header_too_large);
    const std::string fits =
        "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(cap - 100, 'a') + "\r\n\r\n";
    CHECK(parse(fits, r) == parse_status::complete);
}

TEST_CASE("targets become relative paths under the root") {
    std::string path;
    CHECK(to_path("/", path) == target_status::ok);
    CHECK(path == "index.html");
    CHECK(to_path("/a/b.txt", path) == target_status::ok);
    CHECK(path == "a/b.txt");
    CHECK(to_path("/a/", path) == target_status::ok);
    CHECK(path == "a/index.html");
    CHECK(to_path("//a//./b%20c.txt?q=/../x#f", path) == target_status::ok);
    CHECK(path == "a/b c.txt");
    CHECK(to_path("http://host:80/x.css", path) == target_status::ok);
    CHECK(path == "x.css");
    CHECK(to_path("/%41%62", path) == target_status::ok);
    CHECK(path == "Ab");
}

TEST_CASE("targets that climb out of the root are forbidden, malformed ones bad") {
    std::string path;
    for (const char* target : {"/..", "/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/%2E%2e",
                               "/.%2e/x", "/a%2f..%2fb", "/a/..%2f"}) {
        INFO(target);
        CHECK(to_path(target, path) == target_status::forbidden);
    }
    for (const char* target : {"", "*", "a/b", "../x", "/%", "/%4", "/%zz", "/a%00b"}) {
        INFO(target);
        CHECK(to_path(target, path) == target_status::bad_request);
    }
}

TEST_CASE("byte ranges: first-last, open-ended, suffix, unsatisfiable, ignored") {
    using kind = http::byte_range::kind;
    auto r = http::parse_range("bytes=0-9", 100);
    CHECK((r.what == kind::satisfiable && r.first == 0 && r.last == 9));
    r = http::parse_range("bytes=90-200", 100);
    CHECK((r.what == kind::satisfiable && r.first == 90 && r.last == 99));
    r = http::parse_range("bytes=50-", 100);
    CHECK((r.what == kind::satisfiable && r.first == 50 && r.last == 99));
    r = http::parse_range("bytes=-10", 100);
    CHECK((r.what == kind::satisfiable && r.first == 90 && r.last == 99));
    r = http::parse_range("bytes=-1000", 100);
    CHECK((r.what == kind::satisfiable && r.first == 0 && r.last == 99));
    CHECK(http::parse_range("bytes=100-", 100).what == kind::unsatisfiable);
    CHECK(http::parse_range("bytes=-0", 100).what == kind::unsatisfiable);
    CHECK(http::parse_range("bytes=0-0", 0).what == kind::unsatisfiable);
    for (const char* ignored : {"bytes=9-1", "bytes=0-1,5-6", "items=0-1", "bytes=x-1",
                                "bytes=", "bytes=-", "bytes=99999999999999999999-"}) {
        INFO(ignored);
        CHECK(http::parse_range(ignored, 100).what == kind::none);
    }
}
