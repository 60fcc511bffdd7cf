// Tests of runtime/include/tram/timer.hpp.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

using namespace tram;
using namespace std::chrono_literals;

TEST_CASE("sleep_for waits at least its duration and reports success") {
    driver d;
    const auto start = std::chrono::steady_clock::now();
    const io_result r = run(d, []() -> task<io_result> { co_return co_await sleep_for(20ms); }());
    CHECK(r.ok());
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}

TEST_CASE("sleep_until wakes at its deadline on the monotonic clock") {
    driver d;
    const auto deadline = std::chrono::steady_clock::now() + 25ms;
    run(d, [](auto when) -> task<> { co_await sleep_until(when); }(deadline));
    CHECK(std::chrono::steady_clock::now() >= deadline);
}

TEST_CASE("a sleep with a zero or negative duration completes at once") {
    driver d;
    CHECK(run(d, []() -> task<io_result> { co_return co_await sleep_for(-5ms); }()).ok());
}

TEST_CASE("a stop request ends a sleep early with cancelled") {
    driver d;
    std::stop_source stop;
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(5ms);
        s.request_stop();
    }(stop));
    const auto start = std::chrono::steady_clock::now();
    const io_result r = run(d, []() -> task<io_result> { co_return co_await sleep_for(10s); }()
                                           .with_stop_token(stop.get_token()));
    CHECK(r.cancelled());
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}
