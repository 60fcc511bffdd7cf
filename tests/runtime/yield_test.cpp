// Tests of runtime/include/tram/yield.hpp.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace tram;

TEST_CASE("yielding tasks take turns") {
    driver d;
    std::string trace;
    auto worker = [](std::string& out, char name) -> task<> {
        for (int i = 0; i < 3; ++i) {
            out += name;
            co_await yield();
        }
    };
    run(d, when_all(worker(trace, 'a'), worker(trace, 'b')));
    CHECK(trace == "ababab");
}

TEST_CASE("a yielding task does not starve the ring") {
    driver d;
    bool slept = false;
    spawn(d, [](bool& flag) -> task<> {
        co_await nop();
        flag = true;
    }(slept));
    const int spins = run(d, [](bool& flag) -> task<int> {
        int n = 0;
        while (!flag && n < 1'000'000) {
            ++n;
            co_await yield();
        }
        co_return n;
    }(slept));
    CHECK(slept);
    CHECK(spins < 10);
}
