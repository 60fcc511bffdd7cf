// Tests of runtime/src/blocking_pool.cpp: blocking calls on pool threads, their results coming
// back through the ring to the coroutine's own driver.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>
#include <skip.hpp>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <thread>

using namespace tram;
using namespace std::chrono_literals;

namespace {

// Both ways a pool thread can wake the ring; futex only where the kernel has FUTEX_WAIT.
blocking_wake each_wake() {
    const blocking_wake wake = GENERATE(blocking_wake::futex, blocking_wake::eventfd);
    // A kernel without FUTEX_WAIT reports the futex half as skipped and runs eventfd twice.
    if (wake == blocking_wake::futex && test::lacks(opcode::futex_wait))
        return blocking_wake::eventfd;
    return wake;
}

} // namespace

TEST_CASE("a blocking call runs on a pool thread and its value comes back to the caller's thread") {
    blocking_pool pool(2, each_wake());
    driver d;
    const auto caller = std::this_thread::get_id();
    const auto [ran_on, resumed_on] =
        run(d, [](blocking_pool& pool) -> task<std::pair<std::thread::id, std::thread::id>> {
            const auto id = co_await pool.run([] { return std::this_thread::get_id(); });
            co_return std::pair{id, std::this_thread::get_id()};
        }(pool));
    CHECK(ran_on != caller);
    CHECK(resumed_on == caller);
    CHECK(d.stats().cqes_reaped >= 1); // the wake-up came as a CQE
}

TEST_CASE("a blocking call's exception is rethrown in the awaiting coroutine") {
    blocking_pool pool(1, each_wake());
    driver d;
    CHECK_THROWS_WITH(run(d,
                          [](blocking_pool& pool) -> task<> {
                              co_await pool.run([] { throw std::runtime_error("no luck"); });
                          }(pool)),
                      "no luck");
}

TEST_CASE("the loop keeps running other coroutines while a blocking call blocks") {
    blocking_pool pool(1, each_wake());
    driver d;
    std::latch release(1);
    int ticks = 0;
    run(d, [](blocking_pool& pool, std::latch& release, int& ticks) -> task<> {
        auto ticker = [](std::latch& release, int& ticks) -> task<> {
            for (; ticks < 5; ++ticks)
                co_await sleep_for(1ms);
            release.count_down(); // the blocked call may end only after the loop ran
        };
        auto [value, unit] = co_await when_all(pool.run([&release] {
            release.wait();
            return 42;
        }),
                                               ticker(release, ticks));
        CHECK(value == 42);
        (void)unit;
    }(pool, release, ticks));
    CHECK(ticks == 5);
}

TEST_CASE("a stop request ends the wait at once, and the running call finishes on its own") {
    blocking_pool pool(1, each_wake());
    driver d;
    std::latch started(1);
    std::latch release(1);
    std::atomic<bool> finished{false};
    int errnum = 0;
    run(d,
        [](blocking_pool& pool, std::latch& started, std::latch& release,
           std::atomic<bool>& finished, int& errnum) -> task<> {
            std::stop_source stop;
            auto call = [&]() -> task<> {
                try {
                    co_await pool.run([&started, &release, &finished] {
                        started.count_down();
                        release.wait();
                        finished = true;
                    });
                } catch (const error& e) {
                    errnum = e.errnum();
                }
            };
            auto stopper = [&]() -> task<> {
                while (!started.try_wait())
                    co_await sleep_for(1ms);
                stop.request_stop();
            };
            co_await when_all(call().with_stop_token(stop.get_token()), stopper());
        }(pool, started, release, finished, errnum));
    CHECK(errnum == ECANCELED);
    CHECK_FALSE(finished);
    release.count_down();
    // The pool's destructor (end of scope) waits for the abandoned call, which must not
    // touch the coroutine's frame: ASan would see it.
}

TEST_CASE("a call whose waiter gave up before it started is skipped") {
    blocking_pool pool(1, each_wake());
    driver d;
    std::latch release(1);
    std::atomic<int> calls{0};
    run(d, [](blocking_pool& pool, std::latch& release, std::atomic<int>& calls) -> task<> {
        // The only thread is busy with `blocker`, so `skipped` waits in the queue.
        auto blocker = [&]() -> task<> {
            co_await pool.run([&] {
                release.wait();
                ++calls;
            });
        };
        auto skipped = [&]() -> task<> {
            std::stop_source stop;
            stop.request_stop();
            try {
                co_await [&]() -> task<> { co_await pool.run([&] { ++calls; }); }().with_stop_token(
                                   stop.get_token());
            } catch (const error& e) {
                CHECK(e.errnum() == ECANCELED);
            }
            release.count_down();
        };
        co_await when_all(blocker(), skipped());
    }(pool, release, calls));
    CHECK(calls == 1);
}

TEST_CASE("workers of a pool each get their own blocking calls' results back") {
    constexpr int per_worker = 200;
    blocking_pool pool(3, each_wake());
    worker_pool workers(worker_pool_options{.threads = 2});
    std::atomic<int> right_thread{0};
    std::atomic<int> right_value{0};
    std::latch done(static_cast<std::ptrdiff_t>(workers.size()));
    for (std::size_t w = 0; w < workers.size(); ++w) {
        workers.spawn_on(w,
                         [](blocking_pool& pool, std::atomic<int>& right_thread,
                            std::atomic<int>& right_value, std::latch& done) -> task<> {
                             const auto me = std::this_thread::get_id();
                             for (int i = 0; i < per_worker; ++i) {
                                 const int v = co_await pool.run([i] { return i * 3; });
                                 if (v == i * 3) ++right_value;
                                 if (std::this_thread::get_id() == me) ++right_thread;
                             }
                             done.count_down();
                         }(pool, right_thread, right_value, done));
    }
    done.wait();
    CHECK(right_value == per_worker * static_cast<int>(workers.size()));
    CHECK(right_thread == per_worker * static_cast<int>(workers.size()));
}

TEST_CASE("destroying a pool runs the calls still queued before joining its threads") {
    driver d;
    auto pool = std::make_unique<blocking_pool>(1);
    std::atomic<int> calls{0};
    int resumed = 0;
    for (int i = 0; i < 10; ++i) {
        spawn(d, [](blocking_pool& pool, std::atomic<int>& calls, int& resumed) -> task<> {
            co_await pool.run([&calls] {
                std::this_thread::sleep_for(1ms);
                ++calls;
            });
            ++resumed;
        }(*pool, calls, resumed));
    }
    d.run_turn(false); // the tasks start and queue their calls
    pool.reset();
    CHECK(calls == 10);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (resumed < 10 && std::chrono::steady_clock::now() < deadline)
        d.run_turn(true);
    CHECK(resumed == 10);
}
