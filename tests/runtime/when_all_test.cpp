// Tests of runtime/include/tram/when_all.hpp.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

task<int> after(std::chrono::milliseconds delay, int value) {
    co_await sleep_for(delay);
    co_return value;
}

task<> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await sleep_for(delay);
    throw std::runtime_error(message);
}

} // namespace

TEST_CASE("when_all returns the values of tasks of different types in order") {
    driver d;
    auto [a, b, c] = run(d, when_all(after(20ms, 1), []() -> task<std::string> { co_return "two"; }(),
                                     []() -> task<> { co_await nop(); }()));
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(c == std::monostate{});
}

TEST_CASE("when_all over a vector runs the tasks concurrently and keeps their order") {
    driver d;
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(after(std::chrono::milliseconds(30 - 3 * i), i));
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int> values = run(d, when_all(std::move(tasks)));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(values.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(values[i] == i);
    CHECK(elapsed < 250ms); // concurrent: about the longest sleep, not the sum
}

TEST_CASE("when_all rethrows the first exception by position only after all tasks finished") {
    driver d;
    bool slow_finished = false;
    auto slow = [](bool& flag) -> task<> {
        co_await sleep_for(40ms);
        flag = true;
    };
    CHECK_THROWS_WITH(run(d, when_all(fail_after(1ms, "first"), fail_after(5ms, "second"),
                                      slow(slow_finished))),
                      "first");
    CHECK(slow_finished);
}

TEST_CASE("when_all of no tasks completes at once") {
    driver d;
    CHECK(run(d, when_all(std::vector<task<int>>{})).empty());
}
