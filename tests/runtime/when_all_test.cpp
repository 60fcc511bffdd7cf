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
    auto [a, b, c] = run(d, when_all(
                                after(20ms, 1), []() -> task<std::string> { co_return "two"; }(),
                                []() -> task<> { co_await nop(); }()));
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(c == std::monostate{});
}

TEST_CASE("when_all over a vector runs the tasks concurrently and keeps their order") {
    driver d;
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10; ++i)
        tasks.push_back(after(std::chrono::milliseconds(30 - 3 * i), i));
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int> values = run(d, when_all(std::move(tasks)));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(values.size() == 10);
    for (int i = 0; i < 10; ++i)
        CHECK(values[i] == i);
    CHECK(elapsed < 250ms); // concurrent: about the longest sleep, not the sum
}

TEST_CASE("when_all rethrows the first exception by position only after all tasks finished") {
    driver d;
    bool slow_finished = false;
    auto slow = [](bool& flag) -> task<> {
        co_await sleep_for(40ms);
        flag = true;
    };
    CHECK_THROWS_WITH(
        run(d, when_all(fail_after(1ms, "first"), fail_after(5ms, "second"), slow(slow_finished))),
        "first");
    CHECK(slow_finished);
}

TEST_CASE("when_all of no tasks completes at once") {
    driver d;
    CHECK(run(d, when_all(std::vector<task<int>>{})).empty());
}

TEST_CASE("when_all of tasks that all finish at once, in detached tasks that then end") {
    // Every child finishes while when_all starts them: the parent must go on without being
    // resumed from inside when_all's own suspension (whose frame the detached task's end
    // destroys).
    driver d;
    int done = 0;
    for (int i = 0; i < 50; ++i) {
        spawn(d, [](int& n) -> task<> {
            auto [a, b] = co_await when_all([]() -> task<int> { co_return 1; }(),
                                            []() -> task<int> { co_return 2; }());
            n += a + b;
        }(done));
    }
    d.run_turn(false);
    CHECK(done == 150);
    CHECK(d.idle());
}

namespace {
// GCC does not make symmetric transfer a tail call under AddressSanitizer (see task_test).
#if defined(__SANITIZE_ADDRESS__)
constexpr int rounds = 2'000;
#else
constexpr int rounds = 100'000;
#endif
} // namespace

TEST_CASE("a loop of when_all over synchronous tasks does not grow the stack") {
    driver d;
    const int total = run(d, []() -> task<int> {
        int sum = 0;
        for (int i = 0; i < rounds; ++i) {
            std::vector<task<int>> v;
            v.push_back([]() -> task<int> { co_return 1; }());
            sum += (co_await when_all(std::move(v)))[0];
        }
        co_return sum;
    }());
    CHECK(total == rounds);
}
