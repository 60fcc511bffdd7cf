// Tests of runtime/include/tram/spawn.hpp: detached tasks, their exceptions, their shutdown.
#include <tram/runtime.hpp>

#include "awaiting.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace tram;
using namespace std::chrono_literals;

namespace {

using test::read_op;

task<> fail_after_nop(std::string message) {
    co_await nop();
    throw std::runtime_error(message);
}

} // namespace

TEST_CASE("a spawned task starts on the driver's next turn, not at once") {
    driver d;
    bool ran = false;
    spawn(d, [](bool& flag) -> task<> {
        flag = true;
        co_return;
    }(ran));
    CHECK_FALSE(ran);
    d.run_turn(false);
    CHECK(ran);
    CHECK(d.idle());
}

TEST_CASE("spawn without a driver argument uses the thread's current driver") {
    driver d;
    int count = 0;
    run(d, [](int& n) -> task<> {
        for (int i = 0; i < 3; ++i) {
            spawn([](int& m) -> task<> {
                co_await nop();
                ++m;
            }(n));
        }
        co_await sleep_for(5ms);
    }(count));
    CHECK(count == 3);
}

TEST_CASE("a spawned task with a stop token is cancelled by it") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    std::byte b{};
    std::optional<io_result> result;
    spawn(
        d,
        [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
            out = co_await read_op(fd, into);
        }(p.first.get(), &b, result),
        stop.get_token());
    d.run_turn(false);
    d.run_turn(false);
    REQUIRE(d.in_flight() == 1);
    stop.request_stop();
    for (int i = 0; i < 1000 && !result; ++i)
        d.run_turn(true);
    REQUIRE(result.has_value());
    CHECK(result->cancelled());
}

TEST_CASE("an exception escaping a detached task is rethrown by the loop turn") {
    driver d;
    spawn(d, fail_after_nop("lost?"));
    bool thrown = false;
    for (int i = 0; i < 100 && !thrown; ++i) {
        try {
            d.run_turn(true);
        } catch (const std::runtime_error& e) {
            thrown = std::string(e.what()) == "lost?";
        }
    }
    CHECK(thrown);
    CHECK(d.idle());
}

TEST_CASE("exceptions of several detached tasks failing in one turn are each rethrown, in order") {
    driver d;
    spawn(d, fail_after_nop("first"));
    spawn(d, fail_after_nop("second"));
    spawn(d, fail_after_nop("third"));
    std::vector<std::string> seen;
    for (int i = 0; i < 100 && seen.size() < 3; ++i) {
        try {
            d.run_turn(true);
        } catch (const std::runtime_error& e) {
            seen.emplace_back(e.what());
        }
    }
    CHECK(seen == std::vector<std::string>{"first", "second", "third"});
    CHECK(d.idle());
}

TEST_CASE("run cancels and finishes its task when a detached task fails, then rethrows") {
    driver d;
    auto p = test::make_pipe();
    std::byte b{};
    std::optional<io_result> main_result;
    spawn(d, fail_after_nop("detached failure"));
    CHECK_THROWS_WITH(run(d,
                          [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
                              out = co_await read_op(fd, into);
                          }(p.first.get(), &b, main_result)),
                      "detached failure");
    REQUIRE(main_result.has_value()); // it finished before run returned
    CHECK(main_result->cancelled());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("run cancels a task that has its own stop token when a detached task fails") {
    driver d;
    auto p = test::make_pipe();
    std::byte b{};
    std::stop_source own; // never requested
    std::optional<io_result> main_result;
    spawn(d, fail_after_nop("detached failure"));
    auto t = [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
        out = co_await read_op(fd, into);
    }(p.first.get(), &b, main_result);
    CHECK_THROWS_WITH(run(d, std::move(t).with_stop_token(own.get_token())), "detached failure");
    REQUIRE(main_result.has_value());
    CHECK(main_result->cancelled());
}

TEST_CASE("a second detached failure while run cancels its task does not cut the wait short") {
    // The main task's read ignores stop requests here, so it stays in the kernel until the
    // pipe is written. Leaving run on the second exception would destroy the main task's
    // frame under that read (the driver's shutdown would then complete it into freed memory).
    driver d;
    auto p = test::make_pipe();
    std::optional<io_result> main_result;
    spawn(d, fail_after_nop("first"));
    spawn(d, []() -> task<> {
        co_await sleep_for(2ms);
        throw std::runtime_error("second");
    }());
    spawn(d, [](int fd) -> task<> {
        co_await sleep_for(20ms);
        const char c = 'x';
        REQUIRE(::write(fd, &c, 1) == 1);
    }(p.second.get()));
    CHECK_THROWS_WITH(run(d,
                          [](int fd, std::optional<io_result>& out) -> task<> {
                              std::byte b{};
                              out = co_await read_op(fd, &b).with_stop_token({});
                          }(p.first.get(), main_result)),
                      "first");
    REQUIRE(main_result.has_value()); // the read ended before run returned
    CHECK(main_result->value() == 1);
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a detached task still suspended at shutdown is destroyed, not resumed") {
    auto alive = std::make_shared<int>(0);
    bool resumed = false;
    auto p = test::make_pipe();
    {
        driver d;
        spawn(d, [](int fd, [[maybe_unused]] std::shared_ptr<int> keep, bool& flag) -> task<> {
            std::byte b{};
            co_await read_op(fd, &b);
            flag = true;
        }(p.first.get(), alive, resumed));
        d.run_turn(false);
        CHECK(alive.use_count() == 2);
    }
    CHECK(alive.use_count() == 1); // the frame, and the copy it held, are gone
    CHECK_FALSE(resumed);
}

TEST_CASE("a detached task spawned but never started is destroyed at shutdown") {
    auto alive = std::make_shared<int>(0);
    {
        driver d;
        spawn(d, [](std::shared_ptr<int>) -> task<> { co_return; }(alive));
        CHECK(alive.use_count() == 2);
    }
    CHECK(alive.use_count() == 1);
}
