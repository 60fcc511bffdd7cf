// Tests of runtime/include/tram/run.hpp.
#include <tram/runtime.hpp>

#include "skip.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <thread>

using namespace tram;
using namespace std::chrono_literals;

TEST_CASE("run returns the task's value") {
    driver d;
    CHECK(run(d, []() -> task<int> {
              co_await nop();
              co_return 42;
          }()) == 42);
}

TEST_CASE("run rethrows the task's exception") {
    driver d;
    CHECK_THROWS_AS(run(d,
                        []() -> task<> {
                            co_await nop();
                            throw std::out_of_range("out");
                        }()),
                    std::out_of_range);
}

TEST_CASE("run throws logic_error for a task that waits forever, rather than hanging") {
    driver d;
    CHECK_THROWS_AS(run(d, []() -> task<> { co_await std::suspend_always{}; }()), std::logic_error);
    // The driver is still usable afterwards.
    CHECK(run(d, []() -> task<int> { co_return 1; }()) == 1);
}

TEST_CASE("run can be called again and again on the same driver") {
    driver d;
    for (int i = 0; i < 100; ++i) {
        CHECK(run(d, [](int v) -> task<int> {
                  co_await nop();
                  co_return v;
              }(i)) == i);
    }
    CHECK(d.idle());
}

TEST_CASE("a stop token given to run's task from another thread still cancels it") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    std::thread canceller([&] {
        std::this_thread::sleep_for(10ms);
        stop.request_stop();
    });
    const io_result r = run(d,
                            [](int fd) -> task<io_result> {
                                std::byte b{};
                                co_return co_await make_operation([&](io_uring_sqe& sqe) noexcept {
                                    prep_read(sqe, fd, std::span(&b, 1), current_position);
                                });
                            }(p.first.get())
                                              .with_stop_token(stop.get_token()));
    canceller.join();
    CHECK(r.cancelled());
}

TEST_CASE("run on a thread with a small stack survives a million nested awaits") {
    // Symmetric transfer keeps the stack flat; without it a million resumes nest and 256 KiB
    // overflows at once. (GCC does not make the transfer a tail call in code instrumented by
    // ASan or TSan: skipped there.)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    test::skip("GCC does not make symmetric transfer a tail call under a sanitizer");
#else
    struct depth {
        static task<int> of(int n) {
            if (n == 0) co_return 0;
            co_return 1 + co_await of(n - 1);
        }
    };
    int result = -1;
    pthread_attr_t attr;
    REQUIRE(pthread_attr_init(&attr) == 0);
    REQUIRE(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
    pthread_t thread;
    auto body = +[](void* out) -> void* {
        driver d;
        *static_cast<int*>(out) = run(d, depth::of(1'000'000));
        return nullptr;
    };
    REQUIRE(pthread_create(&thread, &attr, body, &result) == 0);
    REQUIRE(pthread_join(thread, nullptr) == 0);
    pthread_attr_destroy(&attr);
    CHECK(result == 1'000'000);
#endif
}
