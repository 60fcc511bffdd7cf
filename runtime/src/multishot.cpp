// The multishot operation's state machine: arming, queueing CQEs, waking the consumer,
// cancelling, and handing itself to the driver when its owner goes away while armed.
#include <tram/multishot.hpp>

#include <tram/sqe.hpp>

#include <algorithm>

namespace tram::detail {

multishot_core::~multishot_core() = default;

void multishot_core::start(driver& d) {
    assert(!pending() && "a multishot operation is armed once at a time");
    driver_ = &d;
    cancel_requested_ = false;
    restart_when_asked_ = false;
    ++arms_;
    if (d.acquire_slot(*this)) {
        submit();
    } else {
        state_ = state::waiting_slot;
    }
}

void multishot_core::submit() {
    io_uring_sqe& sqe = driver_->get_sqe();
    hooks_->prepare(*this, sqe);
    set_user_data(sqe, user_data());
    state_ = state::armed;
}

void multishot_core::cancel() noexcept {
    if (cancel_requested_) return;
    cancel_requested_ = true;
    restart_when_asked_ = false;
    switch (state_) {
    case state::armed:
        send_cancel();
        break;
    case state::waiting_slot:
        // Never reached the kernel: it ends here, with the CQE a cancelled op would have had.
        driver_->forget_waiting(*this);
        state_ = state::idle;
        push(completion{.user_data = user_data(), .result = -ECANCELED, .flags = 0});
        wake();
        break;
    case state::idle:
        break;
    }
}

completion multishot_core::pop() noexcept {
    assert(count_ > 0);
    const completion c = queue_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --count_;
    return c;
}

void multishot_core::push(const completion& c) noexcept {
    if (count_ == capacity_) {
        // Only a burst larger than any before allocates; std::bad_alloc here (noexcept)
        // terminates rather than lose a CQE.
        const std::size_t grown = std::max<std::size_t>(16, capacity_ * 2);
        auto bigger = std::make_unique<completion[]>(grown);
        for (std::size_t i = 0; i < count_; ++i)
            bigger[i] = queue_[(head_ + i) & (capacity_ - 1)];
        queue_ = std::move(bigger);
        capacity_ = grown;
        head_ = 0;
    }
    queue_[(head_ + count_) & (capacity_ - 1)] = c;
    ++count_;
}

void multishot_core::wake() noexcept {
    if (waiter_) driver_->schedule(std::exchange(waiter_, nullptr));
}

void multishot_core::free_self() noexcept { hooks_->destroy(this); }

void multishot_core::orphan() noexcept {
    orphaned_ = true;
    waiter_ = nullptr;
    while (!empty())
        hooks_->discard(*this, pop());
    switch (state_) {
    case state::idle:
        free_self();
        return;
    case state::waiting_slot:
        driver_->forget_waiting(*this);
        free_self();
        return;
    case state::armed:
        // The kernel still holds the SQE's user_data (our address): we live until its final
        // CQE, which on_complete turns into free_self.
        if (!cancel_requested_) {
            cancel_requested_ = true;
            send_cancel();
        }
        return;
    }
}

void multishot_core::send_cancel() noexcept {
    try {
        driver_->cancel(user_data());
        cancel_turn_ = driver_->stats().turns;
    } catch (...) {
        // The ring is failing as a whole; the driver's shutdown cancels everything anyway.
    }
}

void multishot_core::on_complete(operation_base& base, const completion& c) noexcept {
    auto& self = static_cast<multishot_core&>(base);
    const bool final = !c.more();
    if (final) {
        self.state_ = state::idle;
        self.driver_->release_slot();
    } else if (self.cancel_requested_ && self.driver_->stats().turns != self.cancel_turn_) {
        // Still armed after a cancel: the request can miss (a multishot timeout between firing
        // and re-arming answers it with -EALREADY or -ENOENT, and goes on). Ask again, at most
        // once per loop turn; extra requests find nothing and their CQEs go unread.
        self.send_cancel();
    }
    if (self.orphaned_) {
        self.hooks_->discard(self, c);
        if (final) self.free_self();
        return;
    }
    if (final && !self.cancel_requested_ && self.hooks_->restart_on(self, c)) {
        if (!self.waiter_) {
            self.restart_when_asked_ = true;
            return;
        }
        try {
            self.start(*self.driver_);
            return;
        } catch (...) {
            // Could not arm again (the ring is failing): the consumer gets the CQE instead.
        }
    }
    self.push(c);
    self.wake();
}

void multishot_core::on_start(operation_base& base) noexcept {
    static_cast<multishot_core&>(base).submit();
}

void multishot_core::on_cancel(operation_base& base) noexcept {
    static_cast<multishot_core&>(base).cancel();
}

bool multishot_core::next_awaiter::suspend(std::coroutine_handle<> waiter, std::stop_token token) {
    multishot_core& core = *core_;
    if (token.stop_requested()) {
        core.cancel();
    } else if (core.empty() && !core.pending() && core.should_rearm(rearm_)) {
        core.start(*core.driver_);
    }
    if (!core.empty() || !core.pending()) return false;
    core.waiter_ = waiter;
    suspended_ = true;
    // Registered last: a stop requested in between runs the callback here and now.
    if (token.stop_possible()) stop_callback_.emplace(std::move(token), canceller{this});
    return true;
}

void multishot_core::next_awaiter::request_cancel() noexcept {
    driver& d = *core_->driver_;
    if (d.on_driver_thread()) {
        core_->cancel();
        return;
    }
    remote_cancel_posted_.store(true, std::memory_order_release);
    d.post_cancel(*core_);
}

void multishot_core::next_awaiter::forget_stop() noexcept {
    // Destroying the callback waits for one running on another thread; after it no cancel
    // request can be posted, and one still pending is withdrawn.
    stop_callback_.reset();
    if (remote_cancel_posted_.exchange(false, std::memory_order_acquire)) {
        core_->driver_->withdraw_cancel(*core_);
    }
}

} // namespace tram::detail
