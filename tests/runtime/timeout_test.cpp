// Tests of runtime/include/tram/timeout.hpp: a deadline for any task.
#include <tram/runtime.hpp>

#include "awaiting.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

#include <unistd.h>

using namespace tram;
using namespace std::chrono_literals;

namespace {

using test::read_op;

// Two reads in a row: no single SQE to hang a LINK_TIMEOUT on.
task<int> read_two(int fd, io_result& last) {
    std::byte b[2];
    last = co_await read_op(fd, &b[0]);
    if (!last.ok()) co_return last.raw();
    last = co_await read_op(fd, &b[1]);
    co_return last.raw();
}

} // namespace

TEST_CASE("with_timeout gives the value of a task that finishes in time") {
    driver d;
    test::fd_pair p = test::make_pipe();
    REQUIRE(::write(p.second.get(), "ab", 2) == 2);
    io_result last;
    const int n = run(d, with_timeout(read_two(p.first.get(), last), 5s));
    CHECK(n == 1);
    CHECK(last.ok());
    CHECK(d.in_flight() == 0); // the deadline's sleep was cancelled and reaped
}

TEST_CASE("with_timeout cancels a task still waiting at the deadline and throws ETIME") {
    driver d;
    test::fd_pair p = test::make_pipe();
    REQUIRE(::write(p.second.get(), "a", 1) == 1); // the first read completes, the second waits
    io_result last;
    const auto start = std::chrono::steady_clock::now();
    try {
        (void)run(d, with_timeout(read_two(p.first.get(), last), 50ms));
        FAIL("no timeout");
    } catch (const error& e) {
        CHECK(e.errnum() == ETIME);
        CHECK(std::string(e.what()) == "with_timeout: no result within 50 ms (ETIME)");
    }
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    CHECK(last.cancelled()); // the kernel's answer to the cancel arrived before the throw
    CHECK(d.in_flight() == 0);
    // Nothing was consumed by the cancelled read: a later read gets the next byte.
    REQUIRE(::write(p.second.get(), "b", 1) == 1);
    char c = 0;
    CHECK(::read(p.first.get(), &c, 1) == 1);
    CHECK(c == 'b');
}

TEST_CASE("with_timeout rethrows the exception of a task that fails in time") {
    driver d;
    auto failing = []() -> task<int> {
        co_await nop();
        throw std::runtime_error("own failure");
    };
    CHECK_THROWS_WITH(run(d, with_timeout(failing(), 5s)), "own failure");
}

TEST_CASE("with_timeout bounds a task of no value waiting on a multishot accept stream") {
    driver d;
    tcp_listener listener = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
    auto wait_for_client = [](tcp_listener& l) -> task<> {
        auto incoming = l.incoming();
        [[maybe_unused]] tcp_stream s = co_await incoming.next();
    };
    try {
        run(d, with_timeout(wait_for_client(listener), 20ms));
        FAIL("no timeout");
    } catch (const error& e) {
        CHECK(e.errnum() == ETIME);
    }
    CHECK(d.in_flight() == 0); // the accept was cancelled down to its final CQE
}
