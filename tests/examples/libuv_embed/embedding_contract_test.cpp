// The embedding contract of runtime/include/tram/driver.hpp that examples/libuv_embed relies
// on, with poll(2) as the host loop: a host that follows it (run turns while
// `has_pending_work()`, then sleep on `fd()`) never misses a wake-up.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;

namespace {

tram::task<> set(std::atomic<bool>& flag) {
    flag = true;
    co_return;
}

tram::task<> sleep_then_set(std::chrono::milliseconds d, std::atomic<bool>& flag) {
    (void)co_await tram::sleep_for(d);
    flag = true;
}

/// What a host loop does before it sleeps: turns until the driver has nothing pending.
void settle(tram::driver& d) {
    for (int i = 0; i < 1000 && d.has_pending_work(); ++i)
        d.run_once();
}

/// One host loop iteration: settle, sleep on the ring fd (at most `limit`), settle again.
bool wait_readable(tram::driver& d, std::chrono::milliseconds limit) {
    settle(d);
    pollfd p{d.fd(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(limit.count()));
    settle(d);
    return n == 1;
}

} // namespace

TEST_CASE("an embedded driver wakes its host for work posted from another thread before its "
          "first turn") {
    tram::driver d(tram::driver_options{.pollable = true});
    std::atomic<bool> ran{false};
    settle(d); // a fresh driver: the host asks whether it may sleep right away
    std::thread poster([&] {
        std::this_thread::sleep_for(20ms);
        tram::spawn_remote(d, set(ran)); // from a thread without a driver: the eventfd path
    });
    const bool woken = wait_readable(d, 3000ms);
    poster.join();
    CHECK(woken);
    for (int i = 0; i < 100 && !ran; ++i)
        settle(d);
    CHECK(ran);
}

TEST_CASE("an embedded driver's fd polls readable for a timer that fires while the host sleeps") {
    tram::driver d(tram::driver_options{.pollable = true});
    std::atomic<bool> done{false};
    tram::spawn(d, sleep_then_set(30ms, done));
    settle(d);
    REQUIRE_FALSE(done);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 100 && !done; ++i)
        (void)wait_readable(d, 3000ms);
    CHECK(done);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("an embedded driver leaves no work behind once has_pending_work is false") {
    tram::driver d(tram::driver_options{.pollable = true});
    std::atomic<int> finished{0};
    std::atomic<bool> flags[8] = {};
    for (auto& f : flags)
        tram::spawn(d, sleep_then_set(1ms, f));
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) {
        int n = 0;
        for (auto& f : flags)
            n += f ? 1 : 0;
        finished = n;
        if (n == 8) break;
        (void)wait_readable(d, 3000ms);
    }
    CHECK(finished == 8);
    CHECK(std::chrono::steady_clock::now() - start < 2s); // no poll waited for its time limit
    settle(d);
    CHECK(d.idle());
    CHECK_FALSE(d.has_pending_work());
}
