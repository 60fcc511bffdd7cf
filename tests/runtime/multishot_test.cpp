// Tests of runtime/src/multishot.cpp, the generic multishot operation, driven by multishot
// timeouts (IORING_TIMEOUT_MULTISHOT, 6.4): their CQE count is exact and needs no peer.
#include <tram/runtime.hpp>

#include "skip.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

// A timeout firing every `period`, `count` times (0: until cancelled). Counts the CQEs handed
// to `discard` and can ask for restarts.
struct periodic_timeout {
    __kernel_timespec period{};
    unsigned count = 0;
    int* discarded = nullptr;
    bool restart = false;

    void prepare(io_uring_sqe& sqe) noexcept {
        prep_timeout(sqe, &period, count, uapi::timeout_multishot);
    }
    void discard(const completion&) const noexcept {
        if (discarded != nullptr) ++*discarded;
    }
    [[nodiscard]] bool restart_on(const completion& c) const noexcept {
        return restart && c.result == -ETIME;
    }
};

periodic_timeout every(std::chrono::nanoseconds period, unsigned count = 0) {
    return {detail::to_timespec(period), count};
}

bool lacks_multishot_timeout() {
    // IORING_TIMEOUT_MULTISHOT came in 6.4 without an opcode of its own: ask the kernel.
    driver d;
    const io_result r = run(d, []() -> task<io_result> {
        __kernel_timespec ts{0, 1000};
        co_return co_await make_operation([&ts](io_uring_sqe& sqe) noexcept {
            prep_timeout(sqe, &ts, 1, uapi::timeout_multishot);
        });
    }());
    if (r.raw() == -EINVAL) {
        test::skip("IORING_TIMEOUT_MULTISHOT needs Linux 6.4");
        return true;
    }
    return false;
}

// Runs turns until `done` or a bound; returns `done()`.
template <typename Pred>
bool turn_until(driver& d, Pred done, int max_turns = 100'000) {
    for (int i = 0; i < max_turns && !done(); ++i)
        d.run_turn(!done());
    return done();
}

} // namespace

TEST_CASE("a multishot operation delivers each of its CQEs in order, then ends") {
    if (lacks_multishot_timeout()) return;
    driver d;
    const std::vector<completion> got = run(d, []() -> task<std::vector<completion>> {
        multishot op(every(1ms, 5));
        op.start();
        std::vector<completion> all;
        while (auto c = co_await op.next())
            all.push_back(*c);
        CHECK_FALSE(op.pending());
        CHECK(op.arms() == 1);
        co_return all;
    }());
    REQUIRE(got.size() == 5);
    for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].result == -ETIME);
        CHECK(got[i].more() == (i + 1 < got.size()));
    }
    CHECK(d.in_flight() == 0);
}

TEST_CASE("CQEs that arrive while nobody waits are queued, none lost") {
    if (lacks_multishot_timeout()) return;
    driver d;
    run(d, []() -> task<> {
        multishot op(every(100us, 40)); // more than the queue's first capacity
        op.start();
        while (op.pending())
            co_await sleep_for(5ms);
        CHECK(op.queued() == 40);
        int taken = 0;
        while (co_await op.next())
            ++taken;
        CHECK(taken == 40);
    }());
}

TEST_CASE("cancel ends a multishot operation only with the kernel's final CQE") {
    if (lacks_multishot_timeout()) return;
    driver d;
    run(d, []() -> task<> {
        multishot op(every(1ms));
        op.start();
        const auto r1 = co_await op.next();
        REQUIRE(r1);
        const auto r2 = co_await op.next();
        REQUIRE(r2);
        op.cancel();
        CHECK(op.pending()); // still armed until the kernel answers
        std::optional<completion> last;
        while (auto c = co_await op.next())
            last = c;
        REQUIRE(last);
        CHECK(last->result == -ECANCELED);
        CHECK_FALSE(last->more());
        CHECK_FALSE(op.pending());
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a stop request on the coroutine awaiting next() cancels the operation") {
    if (lacks_multishot_timeout()) return;
    driver d;
    std::stop_source stop;
    int delivered = 0;
    int final_result = 0;
    spawn(
        d,
        [](int& delivered, int& final_result) -> task<> {
            multishot op(every(1h));
            op.start();
            while (auto c = co_await op.next()) {
                ++delivered;
                final_result = c->result;
            }
        }(delivered, final_result),
        stop.get_token());
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(5ms);
        s.request_stop();
    }(stop));
    REQUIRE(turn_until(d, [&] { return d.idle(); }));
    CHECK(delivered == 1);
    CHECK(final_result == -ECANCELED);
}

TEST_CASE("a stop request from another thread cancels through the driver") {
    if (lacks_multishot_timeout()) return;
    driver d;
    std::stop_source stop;
    std::atomic<bool> waiting{false};
    int final_result = 0;
    spawn(
        d,
        [](std::atomic<bool>& waiting, int& final_result) -> task<> {
            multishot op(every(1h));
            op.start();
            waiting = true;
            while (auto c = co_await op.next())
                final_result = c->result;
        }(waiting, final_result),
        stop.get_token());
    d.run_turn(false);
    REQUIRE(waiting);
    std::thread([&] { stop.request_stop(); }).join();
    REQUIRE(turn_until(d, [&] { return d.idle(); }));
    CHECK(final_result == -ECANCELED);
}

TEST_CASE("destroying the owner of an armed operation leaves its state to the driver until the "
          "final CQE") {
    if (lacks_multishot_timeout()) return;
    driver d;
    int discarded = 0;
    run(d, [](int& discarded) -> task<> {
        periodic_timeout t = every(100us);
        t.discarded = &discarded;
        {
            multishot op(t);
            op.start();
            const auto r3 = co_await op.next();
            REQUIRE(r3);
            co_await sleep_for(2ms); // CQEs pile up in the queue
            CHECK(op.queued() > 0);
        } // destroyed armed, with CQEs queued: those are discarded, the op cancelled
        CHECK(discarded > 0);
    }(discarded));
    // The cancelled timeout's last CQEs come back to the orphaned state, which frees itself
    // (ASan would report a use after free otherwise).
    REQUIRE(turn_until(d, [&] { return d.in_flight() == 0; }));
    const int after = discarded;
    CHECK(after >= 2); // queued ones, then at least the final -ECANCELED
}

TEST_CASE("restart_on re-arms an operation the kernel ended, without delivering that CQE") {
    if (lacks_multishot_timeout()) return;
    driver d;
    run(d, []() -> task<> {
        periodic_timeout t = every(100us, 2);
        t.restart = true;
        multishot op(t);
        op.start();
        int delivered = 0;
        while (delivered < 6) {
            const auto c = co_await op.next();
            REQUIRE(c);
            CHECK(c->more()); // every final CQE was swallowed by a restart
            ++delivered;
        }
        CHECK(op.arms() >= 3);
        op.cancel();
        while (co_await op.next()) {
        }
    }());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("an operation cancelled while waiting for an in-flight slot ends at once") {
    if (lacks_multishot_timeout()) return;
    driver d(driver_options{
        .entries = 2, .cq_entries = 2, .max_in_flight = 1}); // one operation in flight at most
    REQUIRE(d.in_flight_limit() == 1);
    run(d, []() -> task<> {
        multishot first(every(1ms));
        first.start();
        multishot second(every(1ms));
        second.start(); // waits for the slot
        CHECK(second.pending());
        second.cancel();
        const auto c = co_await second.next();
        REQUIRE(c);
        CHECK(c->result == -ECANCELED);
        const auto r4 = co_await second.next();
        CHECK_FALSE(r4);
        first.cancel();
        while (co_await first.next()) {
        }
    }());
}

TEST_CASE("a driver shut down under an armed multishot operation waits for its final CQE") {
    if (lacks_multishot_timeout()) return;
    std::optional<multishot<periodic_timeout>> op;
    {
        driver d;
        op.emplace(every(1h));
        op->start(d);
        d.run_turn(false);
        CHECK(op->pending());
    } // drained: the kernel's final CQE reached the state before the ring closed
    CHECK_FALSE(op->pending());
    REQUIRE(op->try_next());
    op.reset();
}
