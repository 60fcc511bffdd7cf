// Tests of runtime/src/resolve.cpp: host names resolved on the blocking pool, the answer coming
// back through the ring.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

using namespace tram;
using namespace std::chrono_literals;

TEST_CASE("localhost resolves to a loopback address with the port") {
    driver d;
    const auto found = run(d, resolve("localhost", 8080));
    REQUIRE_FALSE(found.empty());
    bool loopback = false;
    for (const socket_address& a : found) {
        CHECK(a.port() == 8080);
        loopback = loopback || a == socket_address::loopback_v4(8080) ||
                   a == socket_address::loopback_v6(8080);
    }
    CHECK(loopback);
}

TEST_CASE("resolve waits through the ring: the loop keeps running meanwhile") {
    driver d;
    const auto before = d.stats();
    const auto found = run(d, resolve("localhost", 1, resolve_options{.family = AF_INET}));
    REQUIRE_FALSE(found.empty());
    CHECK(found.front() == socket_address::loopback_v4(1));
    // The answer arrived as a CQE (see blocking_pool), not by blocking the loop thread.
    CHECK(d.stats().cqes_reaped > before.cqes_reaped);
}

TEST_CASE("a numeric host needs no lookup") {
    driver d;
    const auto v4 = run(d, resolve("127.0.0.1", 80));
    REQUIRE(v4.size() == 1);
    CHECK(v4[0] == socket_address::loopback_v4(80));
    const auto v6 = run(d, resolve("::1", 80));
    REQUIRE(v6.size() == 1);
    CHECK(v6[0] == socket_address::loopback_v6(80));
    CHECK(d.stats().cqes_reaped == 0);
}

TEST_CASE("a cancelled resolve ends with ECANCELED and the helper finishes on its own") {
    driver d;
    int errnum = 0;
    run(d, [](int& errnum) -> task<> {
        auto lookup = [](int& errnum) -> task<> {
            try {
                (void)co_await resolve("localhost", 80);
            } catch (const error& e) {
                errnum = e.errnum();
            }
        };
        // Stopped before the helper thread can possibly have answered.
        std::stop_source stop;
        stop.request_stop();
        co_await lookup(errnum).with_stop_token(stop.get_token());
    }(errnum));
    CHECK(errnum == ECANCELED);
}

TEST_CASE("a name that does not resolve is an error naming it") {
    driver d;
    // ".invalid" never resolves (RFC 6761); with no network the resolver fails fast too.
    try {
        (void)run(d, resolve("no-such-host.invalid", 80));
        FAIL("resolved .invalid");
    } catch (const error& e) {
        CHECK_THAT(e.what(), Catch::StartsWith("resolve no-such-host.invalid:80: "));
    }
}
