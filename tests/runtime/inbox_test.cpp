// Tests of runtime/include/tram/inbox.hpp: items handed from many threads to one consumer on a
// worker, both wake-up paths (MSG_RING from a worker's loop, eventfd from a plain thread),
// close, push after and racing close, and shutdown with items pending. Run under TSan too.
#include <tram/runtime.hpp>

#include "awaiting.hpp"

#include <catch2/catch.hpp>
#include <skip.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <thread>
#include <utility>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

using test::eventually;

// An item that says who pushed it and when.
struct stamped {
    int producer;
    int seq;
};

// What a consumer saw, written on its worker and read once `ended` (or `received`) says so.
struct consumer_log {
    std::atomic<int> received{0};
    std::atomic<int> out_of_order{0};
    std::atomic<int> batches{0};
    std::atomic<bool> ended{false};
};

// Takes batches until the inbox closes, checking that each producer's items come in order and
// exactly once (each producer numbers its items 0, 1, 2...).
task<> consume_in_order(inbox<stamped>& box, int producers, consumer_log& log) {
    std::vector<int> expected(static_cast<std::size_t>(producers), 0);
    std::vector<stamped> batch;
    while (co_await box.next(batch)) {
        log.batches.fetch_add(1, std::memory_order_relaxed);
        for (const stamped& s : batch) {
            if (s.seq != expected[static_cast<std::size_t>(s.producer)]++) {
                log.out_of_order.fetch_add(1, std::memory_order_relaxed);
            }
        }
        log.received.fetch_add(static_cast<int>(batch.size()), std::memory_order_release);
    }
    if (!batch.empty()) log.out_of_order.fetch_add(1); // a closed inbox gives an empty batch
    log.ended.store(true, std::memory_order_release);
}

// Counts the items handed to it: the inbox's disposal, for items that own nothing.
struct count_disposal {
    std::atomic<int>* disposed;
    void operator()(int) const noexcept { disposed->fetch_add(1, std::memory_order_relaxed); }
};
using counted_inbox = inbox<int, count_disposal>;

// Counts what it receives until the inbox closes.
task<> consume_counting(counted_inbox& box, consumer_log& log) {
    std::vector<int> batch;
    while (co_await box.next(batch))
        log.received.fetch_add(static_cast<int>(batch.size()), std::memory_order_release);
    log.ended.store(true, std::memory_order_release);
}

// An item that owns something: `live` counts those not yet destroyed.
class owned {
public:
    explicit owned(std::atomic<int>& live) noexcept
        : live_(&live) {
        live_->fetch_add(1, std::memory_order_relaxed);
    }
    owned(owned&& other) noexcept
        : live_(std::exchange(other.live_, nullptr)) {}
    owned& operator=(owned&&) = delete;
    ~owned() {
        if (live_ != nullptr) live_->fetch_sub(1, std::memory_order_relaxed);
    }

private:
    std::atomic<int>* live_;
};

// Counts the coroutine frames alive, so that one neither finished nor destroyed shows.
struct frame_counter {
    std::atomic<int>* live;
    explicit frame_counter(std::atomic<int>& l) noexcept
        : live(&l) {
        live->fetch_add(1);
    }
    frame_counter(const frame_counter&) = delete;
    frame_counter& operator=(const frame_counter&) = delete;
    ~frame_counter() { live->fetch_sub(1); }
};

task<> consume_owned(inbox<owned>& box, std::atomic<int>& frames, std::atomic<int>& received) {
    const frame_counter alive(frames);
    std::vector<owned> batch;
    while (co_await box.next(batch))
        received.fetch_add(static_cast<int>(batch.size()));
}

// Takes nothing for an hour (cancelled at shutdown, never resumed), then would consume.
task<> consume_owned_later(inbox<owned>& box, std::atomic<int>& frames) {
    const frame_counter alive(frames);
    co_await sleep_for(1h);
    std::vector<owned> batch;
    while (co_await box.next(batch)) {
    }
}

} // namespace

TEST_CASE("items pushed from many threads reach a consumer on a worker exactly once, in each "
          "producer's order") {
    constexpr int producers = 4;
    constexpr int per_producer = 20'000;
    inbox<stamped> box; // outlives the pool, whose worker consumes it
    consumer_log log;
    worker_pool pool(worker_pool_options{.threads = 2});
    pool.spawn_on(1, consume_in_order(box, producers, log));
    std::atomic<int> refused{0}; // Catch2's assertions are for the test's own thread only
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&box, &refused, p] {
            for (int i = 0; i < per_producer; ++i) {
                if (!box.push(stamped{p, i})) refused.fetch_add(1);
                if (i % 512 == 0) std::this_thread::yield(); // let the consumer wait sometimes
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(refused.load() == 0);
    REQUIRE(eventually([&] { return log.received.load() == producers * per_producer; }));
    box.close();
    REQUIRE(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
    CHECK(log.received.load() == producers * per_producer);
    CHECK(log.out_of_order.load() == 0);
    // Batched: a consumer that keeps up takes one at a time, one that falls behind takes many.
    CHECK(log.batches.load() <= producers * per_producer);
}

TEST_CASE("a push from another worker's loop wakes the waiting consumer with a MSG_RING") {
    if (test::lacks(opcode::msg_ring)) return;
    counted_inbox box;
    consumer_log log;
    worker_pool pool(worker_pool_options{.threads = 2});
    pool.spawn_on(1, consume_counting(box, log));
    // Worker 0's submitted SQEs, read on worker 0: it prepares none of its own, so each that
    // it submits is the MSG_RING of a wake-up (the eventfd path would submit nothing).
    const auto submitted_by_0 = [&pool] {
        return pool.block_on(0, []() -> task<std::uint64_t> {
            co_return current_driver()->stats().sqes_submitted;
        }());
    };
    constexpr int rounds = 50;
    const std::uint64_t before = submitted_by_0();
    for (int i = 0; i < rounds; ++i) {
        REQUIRE(eventually([&] { return box.waiting(); }));
        const bool queued = pool.block_on(0, [](counted_inbox& b, int item) -> task<bool> {
            co_return b.push(item); // inside worker 0's loop turn
        }(box, i));
        CHECK(queued);
        REQUIRE(eventually([&] { return log.received.load() == i + 1; }));
    }
    CHECK(submitted_by_0() - before >= rounds);
    box.close();
    CHECK(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
}

TEST_CASE("a push from a plain thread wakes the waiting consumer through its eventfd") {
    counted_inbox box;
    consumer_log log;
    worker_pool pool(worker_pool_options{.threads = 1});
    pool.spawn_on(0, consume_counting(box, log));
    bool had_driver = true;
    int woken = 0;
    std::thread plain([&] {
        had_driver = current_driver() != nullptr; // none: the wake-up can only be the eventfd
        for (int i = 0; i < 50; ++i) {
            if (!eventually([&] { return box.waiting(); })) return;
            if (!box.push(i)) return;
            if (!eventually([&] { return log.received.load() == i + 1; })) return;
            ++woken;
        }
    });
    plain.join();
    CHECK_FALSE(had_driver);
    CHECK(woken == 50);
    box.close();
    CHECK(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
}

TEST_CASE("a push from the consumer's own worker wakes it on that worker") {
    counted_inbox box;
    consumer_log log;
    worker_pool pool(worker_pool_options{.threads = 1});
    pool.spawn_on(0, consume_counting(box, log));
    REQUIRE(eventually([&] { return box.waiting(); }));
    CHECK(pool.block_on(0, [](counted_inbox& b) -> task<bool> { co_return b.push(7); }(box)));
    CHECK(eventually([&] { return log.received.load() == 1; }));
    box.close();
    CHECK(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
}

TEST_CASE("close while the consumer waits ends its wait, and disposes what was queued") {
    std::atomic<int> disposed{0};
    counted_inbox box(count_disposal{&disposed});
    consumer_log log;
    worker_pool pool(worker_pool_options{.threads = 1});
    pool.spawn_on(0, consume_counting(box, log));
    REQUIRE(eventually([&] { return box.waiting(); }));
    box.close(); // from a thread without a driver, like the echo server's stop
    REQUIRE(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
    CHECK(log.received.load() == 0);
    CHECK_FALSE(box.waiting());
    box.close(); // a second close does nothing
    CHECK(disposed.load() == 0);

    // Queued but never taken: close disposes them.
    counted_inbox untaken(count_disposal{&disposed});
    for (int i = 0; i < 5; ++i)
        CHECK(untaken.push(i));
    untaken.close();
    CHECK(disposed.load() == 5);
}

TEST_CASE("a push after close disposes the item and returns false") {
    std::atomic<int> disposed{0};
    {
        counted_inbox box(count_disposal{&disposed});
        box.close();
        CHECK_FALSE(box.push(1));
        CHECK_FALSE(box.push(2));
        CHECK(disposed.load() == 2);
    }
    CHECK(disposed.load() == 2); // nothing left for the destructor

    // An item that owns what it holds is disposed by being destroyed.
    std::atomic<int> live{0};
    inbox<owned> owning;
    owning.close();
    CHECK_FALSE(owning.push(owned(live)));
    CHECK(live.load() == 0);
}

TEST_CASE("pushes racing close: every item is received or disposed, exactly once") {
    constexpr int producers = 4;
    constexpr int per_producer = 5'000;
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> disposed{0};
        counted_inbox box(count_disposal{&disposed});
        consumer_log log;
        std::atomic<int> refused{0};
        {
            worker_pool pool(worker_pool_options{.threads = 2});
            pool.spawn_on(1, consume_counting(box, log));
            std::latch start(producers + 1); // all at once, so that their pushes interleave
            std::vector<std::thread> threads;
            for (int p = 0; p < producers; ++p) {
                threads.emplace_back([&] {
                    start.arrive_and_wait();
                    for (int i = 0; i < per_producer; ++i) {
                        if (!box.push(i)) refused.fetch_add(1, std::memory_order_relaxed);
                    }
                });
            }
            start.arrive_and_wait();
            // Sometimes before the first push, sometimes in the middle, sometimes after the last.
            std::this_thread::sleep_for(std::chrono::microseconds(round * 50));
            box.close();
            for (auto& t : threads)
                t.join();
            REQUIRE(eventually([&] { return log.ended.load(std::memory_order_acquire); }));
        }
        CHECK(log.received.load() + disposed.load() == producers * per_producer);
        CHECK(disposed.load() >= refused.load()); // refused ones, plus those close dropped
    }
}

TEST_CASE("destroying the pool while the consumer waits unregisters it, and the inbox disposes "
          "what is left") {
    std::atomic<int> live{0};
    std::atomic<int> frames{0};
    std::atomic<int> received{0};
    {
        inbox<owned> box; // outlives the pool
        {
            worker_pool pool(worker_pool_options{.threads = 1});
            pool.spawn_on(0, consume_owned(box, frames, received));
            REQUIRE(eventually([&] { return box.waiting(); }));
        } // the waiting consumer's frame is destroyed unresumed
        CHECK(frames.load() == 0);
        CHECK_FALSE(box.waiting()); // so these pushes touch neither it nor its gone driver
        for (int i = 0; i < 10; ++i)
            CHECK(box.push(owned(live)));
        CHECK(live.load() == 10);
    }
    CHECK(live.load() == 0);
    CHECK(received.load() == 0);
}

TEST_CASE("destroying the pool with items pending leaks nothing") {
    std::atomic<int> live{0};
    std::atomic<int> frames{0};
    {
        inbox<owned> box;
        {
            worker_pool pool(worker_pool_options{.threads = 2});
            pool.spawn_on(1, consume_owned_later(box, frames)); // never takes anything
            std::vector<std::thread> threads;
            for (int p = 0; p < 2; ++p) {
                threads.emplace_back([&] {
                    for (int i = 0; i < 1000; ++i)
                        (void)box.push(owned(live));
                });
            }
            for (auto& t : threads)
                t.join();
            CHECK(live.load() == 2000); // all queued
        }
        CHECK(frames.load() == 0);
        CHECK(live.load() == 2000); // still queued: the inbox outlives the pool
    }
    CHECK(live.load() == 0);
}

TEST_CASE("destroying the pool while producers wake its consumer leaks nothing and wakes no "
          "gone driver") {
    for (int round = 0; round < 10; ++round) {
        std::atomic<int> disposed{0};
        std::atomic<int> frames{0};
        std::atomic<int> received{0};
        std::atomic<bool> stop{false};
        std::atomic<int> pushed{0};
        {
            counted_inbox box(count_disposal{&disposed});
            std::vector<std::thread> threads;
            {
                worker_pool pool(worker_pool_options{.threads = 2});
                pool.spawn_on(
                    1, [](counted_inbox& b, std::atomic<int>& f, std::atomic<int>& r) -> task<> {
                        const frame_counter alive(f);
                        std::vector<int> batch;
                        while (co_await b.next(batch))
                            r.fetch_add(static_cast<int>(batch.size()));
                    }(box, frames, received));
                for (int p = 0; p < 2; ++p) {
                    threads.emplace_back([&] {
                        // Small pauses, so that many pushes find the consumer waiting and
                        // wake it, up to and during the pool's shutdown.
                        while (!stop.load(std::memory_order_relaxed)) {
                            (void)box.push(1); // never closed: always queued
                            pushed.fetch_add(1, std::memory_order_relaxed);
                            std::this_thread::sleep_for(20us);
                        }
                    });
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5 + round));
            } // the consumer's frame goes while pushes keep coming
            stop = true;
            for (auto& t : threads)
                t.join();
            CHECK(frames.load() == 0);
        }
        CHECK(received.load() + disposed.load() == pushed.load());
    }
}
