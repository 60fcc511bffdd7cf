// Tests of runtime/src/worker_pool.cpp: cross-thread spawn and wake-up, switching workers,
// blocking on a result, idle workers, shutdown with work in flight. Run under TSan too.
#include <tram/runtime.hpp>

#include "awaiting.hpp"

#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

using test::eventually;

// std::runtime_error shares its message through a reference-counted string whose count lives
// in the uninstrumented libstdc++.so, so ThreadSanitizer reports a (false) race when such an
// exception crosses threads; this one has no shared state.
struct worker_failure : std::exception {
    const char* what() const noexcept override { return "worker failure"; }
};

double process_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

} // namespace

TEST_CASE("tasks spawned from many threads onto every worker all run exactly once") {
    worker_pool pool(worker_pool_options{.threads = 2});
    constexpr int per_thread = 2500;
    std::atomic<int> ran{0};
    std::vector<std::thread> spawners;
    for (int t = 0; t < 4; ++t) {
        spawners.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                pool.spawn_on(static_cast<std::size_t>(i + t) % pool.size(),
                              [](std::atomic<int>& counter) -> task<> {
                                  co_await nop();
                                  counter.fetch_add(1, std::memory_order_relaxed);
                              }(ran));
            }
        });
    }
    for (auto& s : spawners)
        s.join();
    REQUIRE(eventually([&] { return ran.load() == 4 * per_thread; }));
    std::this_thread::sleep_for(20ms);
    CHECK(ran.load() == 4 * per_thread);
}

TEST_CASE("a worker spawns onto another worker through the ring") {
    worker_pool pool(worker_pool_options{.threads = 2});
    std::atomic<int> ran_on_one{0};
    const int spawned =
        pool.block_on(0, [](worker_pool& p, std::atomic<int>& counter) -> task<int> {
            for (int i = 0; i < 1000; ++i) {
                p.spawn_on(1, [](worker_pool& pp, std::atomic<int>& c) -> task<> {
                    if (pp.current_worker() == 1) c.fetch_add(1);
                    co_return;
                }(p, counter));
                if (i % 64 == 0) co_await yield(); // lets worker 0 send its MSG_RING wake-ups
            }
            co_return 1000;
        }(pool, ran_on_one));
    REQUIRE(eventually([&] { return ran_on_one.load() == spawned; }));
}

TEST_CASE("a spawn from a thread whose own driver is not looping wakes the sleeping worker") {
    worker_pool pool(worker_pool_options{.threads = 1});
    std::this_thread::sleep_for(20ms); // the worker is asleep in io_uring_enter
    driver here; // exists on this thread, but never turns: it cannot carry a MSG_RING
    REQUIRE(current_driver() == &here);
    std::atomic<bool> ran{false};
    pool.spawn_on(0, [](std::atomic<bool>& ran) -> task<> {
        ran = true;
        co_return;
    }(ran));
    CHECK(eventually([&] { return ran.load(); }, 5s));
    CHECK(here.ring().sq().unpublished() == 0); // nothing was left behind in this ring
}

TEST_CASE("a task switches between workers and runs on the one it switched to") {
    worker_pool pool(worker_pool_options{.threads = 2});
    const int hops = pool.block_on(0, [](worker_pool& p) -> task<int> {
        int ok = 0;
        for (int i = 0; i < 1000; ++i) {
            co_await p.switch_to(1);
            ok += p.current_worker() == 1 ? 1 : 0;
            co_await p.switch_to(0);
            ok += p.current_worker() == 0 ? 1 : 0;
        }
        co_return ok;
    }(pool));
    CHECK(hops == 2000);
}

TEST_CASE("block_on returns a worker task's value and rethrows its exception") {
    worker_pool pool(worker_pool_options{.threads = 1});
    CHECK(pool.block_on(0, []() -> task<int> {
        co_await sleep_for(1ms);
        co_return 9;
    }()) == 9);
    CHECK_THROWS_WITH(pool.block_on(0,
                                    []() -> task<int> {
                                        co_await nop();
                                        throw worker_failure();
                                    }()),
                      "worker failure");
}

TEST_CASE("idle workers sleep in the kernel and cost no CPU") {
    worker_pool pool(worker_pool_options{.threads = 2});
    pool.block_on(0, []() -> task<> { co_await nop(); }()); // the workers have run a turn
    const double before = process_cpu_seconds();
    std::this_thread::sleep_for(300ms);
    CHECK(process_cpu_seconds() - before < 0.05);
}

TEST_CASE("destroying a pool with tasks in flight cancels them and joins every worker") {
    std::atomic<int> finished{0};
    const auto start = std::chrono::steady_clock::now();
    {
        worker_pool pool(worker_pool_options{.threads = 2});
        for (int i = 0; i < 20; ++i) {
            pool.spawn_on(static_cast<std::size_t>(i) % 2, [](std::atomic<int>& f) -> task<> {
                co_await sleep_for(1h); // cancelled at shutdown, never resumed
                f.fetch_add(1);
            }(finished));
        }
        std::this_thread::sleep_for(20ms);
    }
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(finished.load() == 0);
}

namespace {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
    return cpus;
}

} // namespace

TEST_CASE("a pinned worker runs on the CPU it was pinned to, and only there") {
    const std::vector<int> cpus = allowed_cpus();
    worker_pool pool(worker_pool_options{.threads = 2, .pin = true});
    const auto where = pool.block_on(1, []() -> task<std::pair<int, int>> {
        cpu_set_t set;
        CPU_ZERO(&set);
        ::sched_getaffinity(0, sizeof set, &set);
        co_return std::pair{::sched_getcpu(), CPU_COUNT(&set)};
    }());
    const int expected = cpus[1 % cpus.size()];
    CHECK(where.first == expected);
    CHECK(where.second == 1);
}

TEST_CASE("a pool of default size has a worker per CPU the process may use, sharing one io-wq") {
    worker_pool pool;
    CHECK(pool.size() == allowed_cpus().size());
    CHECK_FALSE(pool.worker(0).ring().flags().contains(setup_flag::attach_wq));
    for (std::size_t i = 1; i < pool.size(); ++i)
        CHECK(pool.worker(i).ring().flags().contains(setup_flag::attach_wq));
}

TEST_CASE("naming a worker the pool does not have is reported, not undefined") {
    worker_pool pool(worker_pool_options{.threads = 2});
    CHECK_THROWS_AS(pool.worker(2), std::out_of_range);
    CHECK_THROWS_WITH(pool.spawn_on(7, []() -> task<> { co_return; }()),
                      "tram::worker_pool: no worker 7 (the pool has 2)");
}

namespace {

// Counts the coroutine frames alive: a frame that is neither finished nor destroyed at the end
// is a leak.
struct frame_counter {
    std::atomic<int>* live;
    explicit frame_counter(std::atomic<int>& l)
        : live(&l) {
        live->fetch_add(1);
    }
    frame_counter(const frame_counter&) = delete;
    frame_counter& operator=(const frame_counter&) = delete;
    ~frame_counter() { live->fetch_sub(1); }
};

// Hands a ball to the other worker, which hands it back, until the pool goes away.
task<> ping_pong(worker_pool& pool, std::atomic<int>& live, std::atomic<long>& hops) {
    const frame_counter alive(live);
    const std::size_t other = 1 - pool.current_worker();
    hops.fetch_add(1, std::memory_order_relaxed);
    pool.spawn_on(other, ping_pong(pool, live, hops));
    co_await nop(); // in flight when the pool shuts down, for some of them
}

} // namespace

TEST_CASE("destroying a pool while its workers hand tasks to each other leaks no frame") {
    std::atomic<int> live{0};
    std::atomic<long> hops{0};
    {
        worker_pool pool(worker_pool_options{.threads = 2});
        for (std::size_t ball = 0; ball < 8; ++ball) {
            pool.spawn_on(ball % 2, ping_pong(pool, live, hops));
        }
        REQUIRE(eventually([&] { return hops.load() > 20'000; }));
    } // while the balls fly: MSG_RING wake-ups and adopted frames in flight both ways
    CHECK(live.load() == 0);
}
