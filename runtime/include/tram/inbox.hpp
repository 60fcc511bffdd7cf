// A cross-thread hand-off: many producers on any thread, one consumer coroutine.
#pragma once

#include <tram/driver.hpp>

#include <cassert>
#include <coroutine>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

namespace tram {

/// The default disposal of an `inbox`: none beyond the item's own destructor, for items that
/// own what they hold (a `unique_fd`, a `std::unique_ptr`).
struct inbox_drop {
    template <typename U>
    void operator()(U&&) const noexcept {}
};

/// Items handed from any thread to one consumer coroutine on a driver's thread, in batches.
///
/// Producers `push` from any thread (a worker's loop, a plain thread, the consumer's own);
/// the consumer takes everything queued at once with `co_await box.next(batch)`. The consumer
/// is woken only when it waits: the push that finds it waiting hands it to its driver with
/// `driver::schedule_remote` (an IORING_OP_MSG_RING riding along with the producer's next
/// io_uring_enter from inside another driver's loop turn, else one eventfd write), and the
/// pushes of the same burst cost nothing more than a lock and a vector append. Items pushed by
/// one thread arrive in the order it pushed them.
///
/// Every pushed item is either taken by the consumer or disposed, exactly once: by `close`
/// (those still queued), by a `push` after `close` (the one pushed), or by the destructor
/// (those never taken). `Dispose` (called as `dispose(std::move(item))`, noexcept) is what
/// releases an item that owns nothing by itself, such as a raw descriptor; it runs outside
/// the inbox's lock, on whichever thread closes, pushes or destroys, possibly on several at
/// once. Items that the consumer has taken are its own.
///
/// Allocation: none per item beyond `std::vector`'s amortised growth. The consumer's batch and
/// the queue swap storage, so once both have grown to a burst's size nothing is allocated.
///
/// Lifetimes: destroy the inbox after its consumer has finished or been destroyed, e.g. by
/// declaring it before the `worker_pool` whose worker consumes it. A consumer destroyed while
/// it waits (a driver's shutdown destroys its suspended tasks without resuming them) takes its
/// registration back, so no later push touches it or its driver.
template <typename T, typename Dispose = inbox_drop>
class inbox {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "an item moves into the queue and back out with no way to fail");
    static_assert(std::is_nothrow_invocable_v<Dispose&, T&&>,
                  "disposal runs in close() and destructors: it must not throw");

public:
    explicit inbox(Dispose dispose = Dispose{}) noexcept(
        std::is_nothrow_move_constructible_v<Dispose>)
        : dispose_(std::move(dispose)) {}
    inbox(const inbox&) = delete;
    inbox& operator=(const inbox&) = delete;
    /// Disposes what is still queued. Nobody may be waiting in `next` (see the class).
    ~inbox() {
        assert(!waiter_ && "an inbox destroyed while its consumer waits on it");
        for (T& item : pending_)
            dispose_(std::move(item));
    }

    /// From any thread: queues `item` for the consumer and wakes it if it waits. After `close`,
    /// disposes `item` instead and returns false. Throws std::bad_alloc when out of memory,
    /// after disposing `item` (nothing else changed).
    bool push(T item) {
        std::unique_lock lock(mutex_);
        if (closed_) {
            lock.unlock();
            dispose_(std::move(item));
            return false;
        }
        try {
            pending_.push_back(std::move(item));
        } catch (...) {
            lock.unlock();
            dispose_(std::move(item)); // push_back changed nothing: `item` is intact
            throw;
        }
        if (!waiter_) return true;
        // The wake-up goes out under the lock: a consumer destroyed while it waits takes the
        // lock to unregister (`next_awaiter`'s destructor), so once it has, no producer is
        // still sending to its driver, which may then go away.
        try {
            waiter_driver_->schedule_remote(waiter_);
        } catch (...) {
            // Out of memory for the wake-up: undo the push (still the last item, under the
            // same lock) and leave the consumer registered for the next push or close.
            T undone = std::move(pending_.back());
            pending_.pop_back();
            lock.unlock();
            dispose_(std::move(undone));
            throw;
        }
        waiter_ = nullptr;
        return true;
    }

    /// From any thread (a stop callback, say): no more items. Disposes those still queued and
    /// ends the consumer's wait: its `next` returns false from now on. Later calls do nothing.
    /// A wake-up that cannot be queued (out of memory) terminates, since the consumer would
    /// otherwise wait forever.
    void close() noexcept {
        std::vector<T> dropped;
        {
            const std::lock_guard lock(mutex_);
            closed_ = true;
            dropped.swap(pending_);
            if (waiter_) waiter_driver_->schedule_remote(std::exchange(waiter_, nullptr));
        }
        for (T& item : dropped)
            dispose_(std::move(item));
    }

    /// True while the consumer is suspended in `next`: a snapshot, for tests and diagnostics.
    [[nodiscard]] bool waiting() const noexcept {
        const std::lock_guard lock(mutex_);
        return static_cast<bool>(waiter_);
    }

    /// What `next` returns. Resumed on the driver that was looping when it suspended.
    class next_awaiter {
    public:
        next_awaiter(inbox& box, std::vector<T>& batch) noexcept
            : box_(&box)
            , batch_(&batch) {}
        next_awaiter(const next_awaiter&) = delete;
        next_awaiter& operator=(const next_awaiter&) = delete;
        /// Destroyed while suspended (its coroutine destroyed unresumed): unregisters, so that
        /// no push resumes a dead frame or wakes a driver that may be gone.
        ~next_awaiter() {
            if (!suspended_) return;
            const std::lock_guard lock(box_->mutex_);
            if (box_->waiter_ == suspended_) box_->waiter_ = nullptr;
        }

        // The lock is taken here rather than in await_ready, so that a consumer that finds
        // items waiting takes them with one lock and does not suspend.
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) noexcept {
            const std::lock_guard lock(box_->mutex_);
            if (box_->closed_ || !box_->pending_.empty()) {
                take();
                return false;
            }
            assert(!box_->waiter_ && "an inbox has one consumer at a time");
            box_->waiter_driver_ = current_driver();
            assert(box_->waiter_driver_ != nullptr && "inbox::next awaited outside a driver");
            box_->waiter_ = h;
            suspended_ = h;
            return true;
        }
        [[nodiscard]] bool await_resume() noexcept {
            if (suspended_) {
                // Woken by a push or by close: the waker has already unregistered us.
                suspended_ = nullptr;
                const std::lock_guard lock(box_->mutex_);
                take();
            }
            return !closed_;
        }

    private:
        // Under the lock. The previous batch's storage becomes the queue's, which is how the
        // steady state allocates nothing.
        void take() noexcept {
            batch_->clear();
            closed_ = box_->closed_;
            if (!closed_) batch_->swap(box_->pending_);
        }

        inbox* box_;
        std::vector<T>* batch_;
        std::coroutine_handle<> suspended_; // set while registered as the waiter
        bool closed_ = false;
    };

    /// On the consumer, a coroutine running on a driver's loop: `co_await box.next(batch)`
    /// replaces `batch`'s contents with everything queued, in push order, suspending until
    /// there is something; gives false (and an empty `batch`) once the inbox is closed. One
    /// consumer at a time.
    [[nodiscard]] next_awaiter next(std::vector<T>& batch) noexcept {
        return next_awaiter(*this, batch);
    }

private:
    mutable std::mutex mutex_;
    std::vector<T> pending_;
    std::coroutine_handle<> waiter_;  // the consumer, while it waits
    driver* waiter_driver_ = nullptr; // the driver to resume it on
    bool closed_ = false;
    [[no_unique_address]] Dispose dispose_;
};

} // namespace tram
