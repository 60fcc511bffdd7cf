// Tests of runtime/include/tram/when_any.hpp.
#include <tram/runtime.hpp>

#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

task<int> after(std::chrono::milliseconds delay, int value) {
    co_await sleep_for(delay);
    co_return value;
}

// Reads a byte from a pipe nobody writes to; records how its read ended.
task<int> blocked_read(int fd, std::vector<io_result>& outcomes) {
    std::byte b{};
    const io_result r = co_await make_operation([fd, &b](io_uring_sqe& sqe) noexcept {
        prep_read(sqe, fd, std::span(&b, 1), current_position);
    });
    outcomes.push_back(r);
    co_return -1;
}

} // namespace

TEST_CASE("when_any returns the first task to finish") {
    driver d;
    std::vector<task<int>> tasks;
    tasks.push_back(after(50ms, 0));
    tasks.push_back(after(1ms, 1));
    tasks.push_back(after(30ms, 2));
    const auto result = run(d, when_any(std::move(tasks)));
    CHECK(result.index == 1);
    CHECK(result.value == 1);
}

TEST_CASE("when_any cancels the losers in the kernel and waits for them before returning") {
    driver d;
    auto p1 = test::make_pipe();
    auto p2 = test::make_pipe();
    std::vector<io_result> loser_outcomes;
    std::vector<task<int>> tasks;
    tasks.push_back(blocked_read(p1.first.get(), loser_outcomes));
    tasks.push_back(after(5ms, 7));
    tasks.push_back(blocked_read(p2.first.get(), loser_outcomes));
    const auto result = run(d, when_any(std::move(tasks)));
    CHECK(result.index == 1);
    CHECK(result.value == 7);
    REQUIRE(loser_outcomes.size() == 2); // both losers finished before when_any returned
    for (const io_result& r : loser_outcomes)
        CHECK(r.cancelled());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("when_any over tasks of different types gives the winner's value in a variant") {
    driver d;
    auto v = run(d, when_any(after(40ms, 1), []() -> task<std::string> {
                     co_await nop();
                     co_return "fast";
                 }()));
    REQUIRE(v.index() == 1);
    CHECK(std::get<1>(v) == "fast");
}

TEST_CASE("when_any rethrows the winner's exception") {
    driver d;
    std::vector<task<int>> tasks;
    tasks.push_back(after(50ms, 0));
    tasks.push_back([]() -> task<int> {
        co_await nop();
        throw std::runtime_error("winner failed");
    }());
    CHECK_THROWS_WITH(run(d, when_any(std::move(tasks))), "winner failed");
}

TEST_CASE("a stop request on the awaiter of when_any cancels every task") {
    driver d;
    auto p1 = test::make_pipe();
    auto p2 = test::make_pipe();
    std::vector<io_result> outcomes;
    std::stop_source stop;
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(5ms);
        s.request_stop();
    }(stop));
    std::vector<task<int>> tasks;
    tasks.push_back(blocked_read(p1.first.get(), outcomes));
    tasks.push_back(blocked_read(p2.first.get(), outcomes));
    const auto result = run(d, when_any(std::move(tasks)).with_stop_token(stop.get_token()));
    CHECK(result.value == -1);
    REQUIRE(outcomes.size() == 2);
    for (const io_result& r : outcomes)
        CHECK(r.cancelled());
}

TEST_CASE("when_any of no tasks throws invalid_argument") {
    driver d;
    CHECK_THROWS_AS(run(d, when_any(std::vector<task<int>>{})), std::invalid_argument);
}
