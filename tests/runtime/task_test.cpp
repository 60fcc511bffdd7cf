// Tests of runtime/include/tram/task.hpp: laziness, values, exceptions, nesting, stop tokens.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>

using namespace tram;

namespace {

task<int> add_one(int x) { co_return x + 1; }

task<int> depth(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await depth(n - 1);
}

task<> throws() {
    co_await nop();
    throw std::runtime_error("inner failure");
}

task<std::string> catches() {
    try {
        co_await throws();
    } catch (const std::runtime_error& e) {
        co_return std::string("caught: ") + e.what();
    }
    co_return "not caught";
}

struct stop_token_probe {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        token = h.promise().stop_token();
        return false;
    }
    std::stop_token await_resume() noexcept { return token; }
    std::stop_token token;
};

task<bool> inner_sees_stop_possible() { co_return (co_await stop_token_probe{}).stop_possible(); }
task<bool> outer() { co_return co_await inner_sees_stop_possible(); }

} // namespace

TEST_CASE("a task does not start until it is awaited") {
    bool started = false;
    auto t = [](bool& flag) -> task<> {
        flag = true;
        co_return;
    }(started);
    CHECK_FALSE(started);
    driver d;
    run(d, std::move(t));
    CHECK(started);
}

TEST_CASE("a task returns its value to its awaiter") {
    driver d;
    CHECK(run(d, add_one(41)) == 42);
}

TEST_CASE("a task returns move-only values") {
    driver d;
    auto p = run(d, []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); }());
    REQUIRE(p);
    CHECK(*p == 5);
}

TEST_CASE("an exception thrown in a nested task propagates to its awaiter") {
    driver d;
    CHECK(run(d, catches()) == "caught: inner failure");
    CHECK_THROWS_WITH(run(d, throws()), "inner failure");
}

namespace {
// GCC does not turn symmetric transfer into a tail call in code instrumented by
// AddressSanitizer, so there the chain does use stack; the property is checked in the
// uninstrumented builds, and the sanitizer builds check the same code for memory errors.
#if defined(__SANITIZE_ADDRESS__)
constexpr int chain_depth = 2'000;
#else
constexpr int chain_depth = 1'000'000;
#endif
} // namespace

TEST_CASE("a chain of a million nested awaits does not grow the stack") {
    // Without symmetric transfer each level would add a resume frame to the stack, and a
    // million of them overflow an 8 MiB stack many times over.
    driver d;
    CHECK(run(d, depth(chain_depth)) == chain_depth);
}

TEST_CASE("a task that is never awaited frees its frame without running") {
    bool ran = false;
    {
        auto t = [](bool& flag) -> task<> {
            flag = true;
            co_return;
        }(ran);
        CHECK(t.valid());
        CHECK_FALSE(t.done());
    }
    CHECK_FALSE(ran);
}

TEST_CASE("a nested task inherits its awaiter's stop token") {
    driver d;
    CHECK(run(d, outer())); // run gives its task a stop token
    std::stop_source own;
    CHECK(run(d, inner_sees_stop_possible().with_stop_token(own.get_token())));
}
