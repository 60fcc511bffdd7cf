#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

using namespace tram;
using namespace std::chrono_literals;

TEST_CASE("a task awaiting a nop through the driver gets its result") {
    driver d;
    const int value = run(d, []() -> task<int> {
        io_result r = co_await nop();
        co_return r.ok() ? 7 : -1;
    }());
    CHECK(value == 7);
}

TEST_CASE("sleep_for waits on the ring") {
    driver d;
    const auto start = std::chrono::steady_clock::now();
    run(d, []() -> task<> { co_await sleep_for(20ms); }());
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}
