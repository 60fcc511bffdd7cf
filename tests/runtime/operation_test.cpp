// Tests of runtime/include/tram/operation.hpp: io_awaiter outcomes, timeouts, stop tokens.
#include <tram/runtime.hpp>

#include "awaiting.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

using namespace tram;
using namespace std::chrono_literals;

namespace {

using test::read_op;

} // namespace

TEST_CASE("an operation on a bad descriptor gives the kernel's error as a value") {
    driver d;
    std::byte b{};
    const io_result r = run(
        d, [](std::byte* into) -> task<io_result> { co_return co_await read_op(-1, into); }(&b));
    CHECK_FALSE(r.ok());
    CHECK(r.error() == EBADF);
    CHECK_FALSE(r.cancelled());
    CHECK_FALSE(r.timed_out());
}

TEST_CASE("a read gives the byte count, and 0 at end of file") {
    driver d;
    auto p = test::make_pipe();
    const char c = 'y';
    REQUIRE(::write(p.second.get(), &c, 1) == 1);
    const int wfd = p.second.release();
    ::close(wfd);
    std::byte b{};
    auto [first, second] =
        run(d, [](int fd, std::byte* into) -> task<std::pair<io_result, io_result>> {
            const io_result a = co_await read_op(fd, into);
            const io_result e = co_await read_op(fd, into);
            co_return std::pair{a, e};
        }(p.first.get(), &b));
    CHECK(first.value() == 1);
    CHECK(b == std::byte{'y'});
    CHECK(second.ok());
    CHECK(second.value() == 0);
}

TEST_CASE("a stop request on an operation with a timeout gives cancelled, not timed out") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(2ms);
        s.request_stop();
    }(stop));
    std::byte b{};
    const io_result r = run(d,
                            [](int fd, std::byte* into) -> task<io_result> {
                                co_return co_await read_op(fd, into).with_timeout(1h);
                            }(p.first.get(), &b)
                                                               .with_stop_token(stop.get_token()));
    CHECK(r.cancelled());
    CHECK_FALSE(r.timed_out());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("an operation keeps a stop token given with with_stop_token when it is moved") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source own;
    std::byte b{};
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(2ms);
        s.request_stop();
    }(own));
    // The task's own token is never requested: only the operation's token can end the read.
    const io_result r = run(d, [](int fd, std::byte* into, std::stop_token t) -> task<io_result> {
        auto op = read_op(fd, into).with_stop_token(std::move(t)); // a move
        co_return co_await op;
    }(p.first.get(), &b, own.get_token()));
    CHECK(r.cancelled());
}

TEST_CASE("an operation can be awaited again after it completed") {
    driver d;
    const int ok = run(d, []() -> task<int> {
        auto op = nop();
        int n = 0;
        for (int i = 0; i < 3; ++i)
            n += (co_await op).ok() ? 1 : 0;
        co_return n;
    }());
    CHECK(ok == 3);
    CHECK(d.in_flight() == 0);
}

TEST_CASE("data that arrives before the cancellation wins keeps its result") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    std::byte b{};
    const char c = 'z';
    REQUIRE(::write(p.second.get(), &c, 1) == 1);
    stop.request_stop();
    // Stop requested before the await: the operation never starts, even with data waiting.
    const io_result early =
        run(d,
            [](int fd, std::byte* into) -> task<io_result> {
                co_return co_await read_op(fd, into);
            }(p.first.get(), &b)
                                               .with_stop_token(stop.get_token()));
    CHECK(early.cancelled());
    // Without a stop, the same read completes with the byte.
    const io_result r = run(d, [](int fd, std::byte* into) -> task<io_result> {
        co_return co_await read_op(fd, into);
    }(p.first.get(), &b));
    CHECK(r.value() == 1);
}

TEST_CASE("a timeout of zero ends a blocked operation at once, timed out") {
    driver d;
    auto p = test::make_pipe();
    std::byte b{};
    const io_result r = run(d, [](int fd, std::byte* into) -> task<io_result> {
        co_return co_await read_op(fd, into).with_timeout(0ns);
    }(p.first.get(), &b));
    CHECK(r.timed_out());
}
