// Awaitable io_uring operations: the SQE is prepared straight into the ring from
// await_suspend, and the operation's state lives in the awaiter, in the coroutine frame.
#pragma once

#include <tram/driver.hpp>
#include <tram/io_result.hpp>
#include <tram/task.hpp>

#include <atomic>
#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <utility>

namespace tram {

/// Base of every awaitable single-SQE operation. `Derived` provides
/// `void prepare(io_uring_sqe&)`, called once the operation may start, and may keep in itself
/// whatever memory the kernel reads or writes (it lives until the last CQE has arrived).
///
/// Outcome: `co_await` gives an `io_result`. A stop request on the awaiting coroutine's stop
/// token cancels the operation in the kernel (IORING_OP_ASYNC_CANCEL), and the coroutine
/// resumes only when the operation's CQE has arrived: with `cancelled()` if the cancellation
/// won, with the real result if the operation completed first.
template <typename Derived>
class io_awaiter : private detail::operation_base {
public:
    io_awaiter() noexcept
        : operation_base(&on_complete, &on_start, &on_cancel) {}
    io_awaiter(io_awaiter&& other) noexcept
        : operation_base(&on_complete, &on_start, &on_cancel)
        , stop_(std::move(other.stop_))
        , timeout_(other.timeout_)
        , has_timeout_(other.has_timeout_)
        , explicit_stop_(other.explicit_stop_) {
        assert(other.state_ == state::idle && "an operation cannot move once awaited");
    }
    ~io_awaiter() {
        assert(state_ != state::in_flight && "destroyed with its operation in flight");
    }

    /// Ends the operation with `timed_out()` if it has not completed after `timeout`, through
    /// a linked IORING_OP_LINK_TIMEOUT (no timer of our own, no extra system call).
    Derived& with_timeout(std::chrono::nanoseconds timeout) & noexcept {
        set_timeout(timeout);
        return derived();
    }
    Derived&& with_timeout(std::chrono::nanoseconds timeout) && noexcept {
        set_timeout(timeout);
        return std::move(derived());
    }
    /// Observes `token` instead of the awaiting coroutine's stop token.
    Derived&& with_stop_token(std::stop_token token) && noexcept {
        stop_ = std::move(token);
        explicit_stop_ = true;
        return std::move(derived());
    }

    bool await_ready() const noexcept { return false; }

    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        driver_ = current_driver();
        assert(driver_ != nullptr && "an I/O operation needs a running tram::driver");
        waiter_ = waiter;
        if constexpr (std::is_base_of_v<detail::promise_base, Promise>) {
            // The common case: the coroutine's own token, through its cancel slot.
            if (!explicit_stop_) return suspend_observing(waiter.promise());
        }
        if (!explicit_stop_) stop_ = detail::stop_token_of(waiter);
        if (stop_.stop_requested()) return finish_at_once();
        start();
        // Registered after the SQE exists, so that a stop request always finds something to
        // cancel (the callback runs at once if the stop was requested in between). An inherited
        // token moves into the callback; one given with `with_stop_token` stays, for a later
        // await of the same operation.
        if (stop_.stop_possible()) {
            stop_callback_.emplace(explicit_stop_ ? std::stop_token(stop_) : std::move(stop_),
                                   canceller{this});
        }
        return true;
    }

    io_result await_resume() noexcept {
        // Disarming the slot (or destroying the callback) waits for a canceller running on
        // another thread; after it, no new cancel request can be posted, and a pending one is
        // withdrawn.
        if (cancel_slot_ != nullptr) {
            cancel_slot_->disarm(this);
            cancel_slot_ = nullptr;
        } else {
            stop_callback_.reset();
        }
        if (remote_cancel_posted_.load(std::memory_order_acquire)) driver_->withdraw_cancel(*this);
        state_ = state::idle;
        return result_;
    }

protected:
    [[nodiscard]] Derived& derived() noexcept { return static_cast<Derived&>(*this); }
    [[nodiscard]] tram::driver& driver() const noexcept { return *driver_; }

private:
    enum class state : unsigned char { idle, waiting_slot, in_flight, completed };

    struct canceller {
        io_awaiter* self;
        void operator()() const noexcept { self->request_cancel(); }
    };

    bool suspend_observing(detail::promise_base& promise) {
        const std::stop_token& token = promise.stop_token();
        if (token.stop_requested()) return finish_at_once();
        start();
        // Armed after the SQE exists, like the callback below.
        if (promise.cancel_slot().arm(token, this, &cancel_from_slot)) {
            cancel_slot_ = &promise.cancel_slot();
        }
        return true;
    }

    bool finish_at_once() noexcept {
        result_ = io_result(-ECANCELED);
        return false;
    }

    void start() {
        if (!driver_->acquire_slot(*this)) {
            state_ = state::waiting_slot;
            return;
        }
        try {
            submit();
        } catch (...) {
            driver_->release_slot(); // the SQE could not be had: the op never started
            throw;
        }
    }

    static void cancel_from_slot(void* self) noexcept {
        static_cast<io_awaiter*>(self)->request_cancel();
    }

    void set_timeout(std::chrono::nanoseconds timeout) noexcept {
        const auto ns = std::max<std::chrono::nanoseconds::rep>(timeout.count(), 0);
        timeout_ = {ns / 1'000'000'000, ns % 1'000'000'000};
        has_timeout_ = true;
    }

    void submit() {
        if (has_timeout_) {
            // The op and its LINK_TIMEOUT must reach the kernel in one batch, hence one range.
            sqe_range sqes = driver_->get_sqes(2);
            derived().prepare(sqes[0]);
            set_user_data(sqes[0], user_data());
            prep_link_timeout(sqes[1], &timeout_);
            set_user_data(sqes[1], user_data(detail::link_timeout_tag));
            sqes.link();
            pending_cqes_ = 2;
        } else {
            io_uring_sqe& sqe = driver_->get_sqe();
            derived().prepare(sqe);
            set_user_data(sqe, user_data());
            pending_cqes_ = 1;
        }
        state_ = state::in_flight;
    }

    void request_cancel() noexcept {
        if (!driver_->on_driver_thread()) {
            remote_cancel_posted_.store(true, std::memory_order_release);
            driver_->post_cancel(*this);
            return;
        }
        cancel_here();
    }

    void cancel_here() noexcept {
        switch (state_) {
        case state::waiting_slot:
            driver_->forget_waiting(*this);
            result_ = io_result(-ECANCELED);
            complete();
            break;
        case state::in_flight:
            cancel_requested_ = true;
            driver_->cancel(user_data());
            break;
        default:
            break; // completed already: nothing to cancel
        }
    }

    void complete() noexcept {
        state_ = state::completed;
        driver_->schedule(waiter_);
    }

    static void on_start(operation_base& base) noexcept { static_cast<io_awaiter&>(base).submit(); }
    static void on_cancel(operation_base& base) noexcept {
        static_cast<io_awaiter&>(base).cancel_here();
    }
    static void on_complete(operation_base& base, const completion& c) noexcept {
        auto& self = static_cast<io_awaiter&>(base);
        if ((c.user_data & detail::user_data_tag_mask) == detail::link_timeout_tag) {
            self.timed_out_ = c.result == -ETIME;
        } else if (!c.notification()) {
            self.result_ = io_result(c.result, c.flags);
            // MORE: another CQE follows for this SQE (SEND_ZC's notification, after which the
            // kernel no longer reads the buffer): the operation is done only with the last.
            if (c.more()) ++self.pending_cqes_;
        }
        if (--self.pending_cqes_ > 0) return;
        // Ops interrupted in an async worker report EINTR rather than ECANCELED.
        const bool interrupted = self.result_.raw() == -ECANCELED || self.result_.raw() == -EINTR;
        if (interrupted && self.timed_out_) {
            self.result_ = io_result(-ETIME);
        } else if (interrupted && self.cancel_requested_) {
            self.result_ = io_result(-ECANCELED);
        }
        self.driver_->release_slot();
        self.complete();
    }

    tram::driver* driver_ = nullptr;
    std::coroutine_handle<> waiter_;
    std::stop_token stop_;
    std::optional<std::stop_callback<canceller>> stop_callback_;
    detail::cancel_slot* cancel_slot_ = nullptr;
    std::atomic<bool> remote_cancel_posted_{false};
    io_result result_;
    __kernel_timespec timeout_{};
    state state_ = state::idle;
    unsigned char pending_cqes_ = 0;
    bool has_timeout_ = false;
    bool timed_out_ = false;
    bool cancel_requested_ = false;
    bool explicit_stop_ = false;
};

namespace detail {

/// The most one read, write, send or recv moves (the kernel's MAX_RW_COUNT): larger requests
/// are short.
inline constexpr std::size_t max_transfer = 0x7ffff000;

template <typename Buffer>
[[nodiscard]] Buffer clamp_transfer(Buffer buf) noexcept {
    return buf.size() > max_transfer ? buf.subspan(0, max_transfer) : buf;
}

/// Base of the file and socket awaitables whose `co_await` gives a plain value and throws
/// tram::error on failure. `Derived` adds `fail(errnum)` and `value_of(io_result)` to
/// io_awaiter's needs.
template <typename Derived>
class checked_awaiter : public io_awaiter<Derived> {
public:
    decltype(auto) await_resume() {
        const io_result r = io_awaiter<Derived>::await_resume();
        auto& self = static_cast<Derived&>(*this);
        if (!r.ok()) self.fail(r.error());
        return self.value_of(r);
    }
};

} // namespace detail

/// An operation prepared by a callable `prep(io_uring_sqe&)`. Memory the kernel uses must
/// outlive the co_await, which it does when it lives in the awaiting coroutine.
template <typename Prep>
class io_operation final : public io_awaiter<io_operation<Prep>> {
public:
    explicit io_operation(Prep prep) noexcept(std::is_nothrow_move_constructible_v<Prep>)
        : prep_(std::move(prep)) {}
    void prepare(io_uring_sqe& sqe) noexcept { prep_(sqe); }

private:
    Prep prep_;
};

/// `co_await make_operation([&](io_uring_sqe& sqe) { prep_read(sqe, fd, buf, 0); })`.
template <typename Prep>
[[nodiscard]] io_operation<std::decay_t<Prep>> make_operation(Prep&& prep) {
    return io_operation<std::decay_t<Prep>>(std::forward<Prep>(prep));
}

/// IORING_OP_NOP through the driver: the cost of one round trip through the ring.
[[nodiscard]] inline auto nop() {
    return make_operation([](io_uring_sqe& sqe) noexcept { prep_nop(sqe); });
}

} // namespace tram
