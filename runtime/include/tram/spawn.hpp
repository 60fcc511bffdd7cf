// Detached tasks.
#pragma once

#include <tram/driver.hpp>
#include <tram/task.hpp>

#include <cassert>
#include <coroutine>
#include <exception>
#include <stop_token>

namespace tram {
namespace detail {

/// The frame that runs a spawned task: owned by its driver until it finishes.
class detached_task {
public:
    class promise_type : public promise_base {
    public:
        // Adopted by its driver through `link()`, by the thread that runs that driver.
        promise_type(driver& d, task<void>&) noexcept
            : driver_(&d), link_(std::coroutine_handle<promise_type>::from_promise(*this)) {}
        detached_task get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        void return_void() const noexcept {}
        // The task's own exceptions are caught in `run_detached`; nothing reaches here.
        void unhandled_exception() const noexcept { std::terminate(); }

        struct release_and_finish {
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                promise_type& p = h.promise();
                p.driver_->release(p.link_);
                h.destroy();
            }
            void await_resume() const noexcept {}
        };
        release_and_finish final_suspend() const noexcept { return {}; }
        [[nodiscard]] driver& owner() const noexcept { return *driver_; }
        [[nodiscard]] detached_link& link() noexcept { return link_; }

    private:
        driver* driver_;
        detached_link link_;
    };

    std::coroutine_handle<promise_type> handle;
};

inline detached_task run_detached(driver& d, task<void> t) {
    try {
        co_await std::move(t);
    } catch (...) {
        d.report_unhandled(std::current_exception());
    }
}

} // namespace detail

/// Starts `t` on `d`'s next loop turn, detached: nobody awaits it, and the driver owns it.
///
/// Exceptions: one that escapes a detached task is never lost. The driver keeps the first
/// one and rethrows it from the loop (`driver::run_turn`); `tram::run` then cancels its main
/// task, lets it finish, and rethrows the exception to its caller.
///
/// Shutdown: a detached task still suspended when the driver is destroyed has its I/O
/// cancelled (the driver waits for every CQE) and its frame destroyed without being resumed.
inline void spawn(driver& d, task<void> t, std::stop_token token = {}) {
    if (token.stop_possible()) t = std::move(t).with_stop_token(std::move(token));
    const auto frame = detail::run_detached(d, std::move(t)).handle;
    d.adopt(frame.promise().link());
    d.schedule(frame);
}

/// `spawn` from any thread onto driver `d`, which may run on another thread: the task starts
/// there on its next turn (see `driver::schedule_remote` for how it is woken).
inline void spawn_remote(driver& d, task<void> t, std::stop_token token = {}) {
    if (token.stop_possible()) t = std::move(t).with_stop_token(std::move(token));
    const auto frame = detail::run_detached(d, std::move(t)).handle;
    d.schedule_remote(frame, &frame.promise().link());
}

/// `spawn` on the calling thread's current driver.
inline void spawn(task<void> t, std::stop_token token = {}) {
    driver* d = current_driver();
    assert(d != nullptr && "spawn needs a tram::driver on this thread");
    spawn(*d, std::move(t), std::move(token));
}

} // namespace tram
