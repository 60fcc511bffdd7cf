// Tests of runtime/include/tram/cancel_slot.hpp: one stop callback per coroutine, cancelling
// the operation it awaits now, from any thread.
#include <tram/cancel_slot.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <thread>

using tram::detail::cancel_slot;

namespace {

struct fake_operation {
    std::atomic<int> cancels{0};
    std::atomic<bool> slow{false}; // the canceller lingers, so that disarm must wait
    std::atomic<bool> entered{false};
    static void cancel(void* self) noexcept {
        auto& op = *static_cast<fake_operation*>(self);
        op.entered = true;
        if (op.slow) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        op.cancels.fetch_add(1);
    }
};

} // namespace

TEST_CASE("a slot whose token can never stop arms nothing") {
    cancel_slot slot;
    fake_operation op;
    CHECK_FALSE(slot.arm(std::stop_token{}, &op, &fake_operation::cancel));
}

TEST_CASE("a stop request cancels the armed operation once, and none after it is disarmed") {
    std::stop_source stop;
    cancel_slot slot;
    fake_operation first;
    fake_operation second;
    REQUIRE(slot.arm(stop.get_token(), &first, &fake_operation::cancel));
    slot.disarm(&first);
    REQUIRE(slot.arm(stop.get_token(), &second, &fake_operation::cancel));
    stop.request_stop();
    CHECK(first.cancels == 0);
    CHECK(second.cancels == 1);
    slot.disarm(&second);
    CHECK(second.cancels == 1);
}

TEST_CASE("an operation armed after the stop was requested is cancelled at once") {
    std::stop_source stop;
    cancel_slot slot;
    fake_operation before;
    fake_operation after;
    REQUIRE(slot.arm(stop.get_token(), &before, &fake_operation::cancel)); // registers
    slot.disarm(&before);
    stop.request_stop(); // nothing armed: nothing to cancel yet
    REQUIRE(slot.arm(stop.get_token(), &after, &fake_operation::cancel));
    CHECK(after.cancels == 1);
    slot.disarm(&after);
    CHECK(before.cancels == 0);
}

TEST_CASE("a first arm with the stop already requested cancels at once") {
    std::stop_source stop;
    stop.request_stop();
    cancel_slot slot;
    fake_operation op;
    REQUIRE(slot.arm(stop.get_token(), &op, &fake_operation::cancel));
    CHECK(op.cancels == 1);
    slot.disarm(&op);
}

TEST_CASE("disarming waits for a canceller on another thread to finish") {
    std::stop_source stop;
    cancel_slot slot;
    fake_operation op;
    op.slow = true;
    REQUIRE(slot.arm(stop.get_token(), &op, &fake_operation::cancel));
    std::thread requester([&] { stop.request_stop(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!op.entered && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    REQUIRE(op.entered); // the canceller has claimed the operation and sleeps in its cancel
    slot.disarm(&op);
    CHECK(op.cancels == 1); // so disarm returned only after the cancel function did
    requester.join();
}

TEST_CASE("stop requests racing arms and disarms cancel each armed operation at most once") {
    for (int round = 0; round < 200; ++round) {
        std::stop_source stop;
        cancel_slot slot;
        fake_operation ops[8];
        std::atomic<bool> go{false};
        std::thread requester([&] {
            while (!go)
                std::this_thread::yield();
            stop.request_stop();
        });
        go = true;
        for (fake_operation& op : ops) {
            if (slot.arm(stop.get_token(), &op, &fake_operation::cancel)) slot.disarm(&op);
        }
        requester.join();
        for (fake_operation& op : ops)
            CHECK(op.cancels <= 1);
        // However the race went, an operation armed after it is cancelled at once.
        fake_operation late;
        REQUIRE(slot.arm(stop.get_token(), &late, &fake_operation::cancel));
        CHECK(late.cancels == 1);
        slot.disarm(&late);
    }
}
