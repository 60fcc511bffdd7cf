// One stop callback per coroutine, cancelling whatever operation the coroutine awaits.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <thread>

namespace tram::detail {

/// The operation a coroutine awaits now, for the coroutine's stop token to cancel.
///
/// A std::stop_callback per operation costs five or six atomic read-modify-writes per await
/// (copying the token, registering, deregistering, releasing), a third of what co_await of a
/// NOP costs the driver. Instead, the coroutine registers one callback the first time it
/// awaits a cancellable operation, and each await arms the slot with a plain store and
/// disarms it with one compare-exchange. A stop request, from any thread, claims the armed
/// operation and runs its cancel function; disarming waits for a claim in progress to end, so
/// the operation cannot go away under its canceller.
///
/// States of `armed_`: 0 (nothing awaited), the operation's address (armed), address|claimed
/// (a canceller runs its cancel function), address|cancelled (it has returned).
class cancel_slot {
public:
    /// Runs on the thread that requested the stop, or on the owner's when the stop came
    /// first: the operation decides how to reach its driver.
    using cancel_fn = void (*)(void* operation) noexcept;

    cancel_slot() noexcept = default;
    cancel_slot(const cancel_slot&) = delete;
    cancel_slot& operator=(const cancel_slot&) = delete;

    /// Arms the slot with `operation` (at least 4-byte aligned), to be cancelled by `cancel`
    /// if `token` is stopped before `disarm`. A stop requested already cancels it at once, on
    /// this thread. False when `token` can never be stopped (nothing is armed then).
    bool arm(const std::stop_token& token, void* operation, cancel_fn cancel) {
        if (!registered_) {
            if (!token.stop_possible()) return false;
            // The callback is registered with the first token and stays until the coroutine
            // ends: a coroutine's token is set before it starts and never changes.
            cancel_ = cancel;
            armed_.store(reinterpret_cast<std::uintptr_t>(operation), std::memory_order_release);
            registered_.emplace(token, fire_on_stop{this}); // runs at once if stopped already
            return true;
        }
        cancel_ = cancel;
        armed_.store(reinterpret_cast<std::uintptr_t>(operation), std::memory_order_release);
        // A stop request that came while nothing was armed found nothing to cancel.
        if (token.stop_requested()) fire();
        return true;
    }

    /// Ends what `arm` started. If a canceller has claimed the operation, waits until its
    /// cancel function has returned (it only posts a request: microseconds at most).
    void disarm(void* operation) noexcept {
        auto expected = reinterpret_cast<std::uintptr_t>(operation);
        if (armed_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return;
        while ((armed_.load(std::memory_order_acquire) & cancelled) == 0)
            std::this_thread::yield();
        armed_.store(0, std::memory_order_relaxed);
    }

private:
    static constexpr std::uintptr_t claimed = 1;
    static constexpr std::uintptr_t cancelled = 2;

    struct fire_on_stop {
        cancel_slot* slot;
        void operator()() const noexcept { slot->fire(); }
    };

    void fire() noexcept {
        std::uintptr_t armed = armed_.load(std::memory_order_acquire);
        while (armed != 0 && (armed & (claimed | cancelled)) == 0) {
            // acq_rel: `cancel_` was written before the release store that armed the slot.
            if (armed_.compare_exchange_weak(armed, armed | claimed, std::memory_order_acq_rel)) {
                cancel_(reinterpret_cast<void*>(armed));
                armed_.store(armed | cancelled, std::memory_order_release);
                return;
            }
        }
    }

    std::atomic<std::uintptr_t> armed_{0};
    cancel_fn cancel_ = nullptr;
    std::optional<std::stop_callback<fire_on_stop>> registered_;
};

} // namespace tram::detail
