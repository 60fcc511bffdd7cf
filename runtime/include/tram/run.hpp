// Running a task to completion on a driver, from ordinary (non-coroutine) code.
#pragma once

#include <tram/driver.hpp>
#include <tram/task.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <stop_token>

namespace tram {
namespace detail {

// Passes a stop request on to another stop source.
struct request_stop_of {
    std::stop_source* target;
    void operator()() const noexcept { target->request_stop(); }
};

} // namespace detail

/// Runs the loop of `d` until `t` has finished, and returns its value or rethrows its
/// exception. If an exception escapes a detached task meanwhile, `t` is cancelled (a stop
/// request on its stop token), run waits for it to finish, then rethrows that exception; any
/// further ones that escape detached tasks while `t` is being cancelled are written to stderr
/// (the first is the one rethrown). A stop token that `t` already had still cancels it.
/// Throws std::logic_error if `t` waits for something that nothing in the driver can bring.
template <typename T>
T run(driver& d, task<T> t) {
    // run must be able to cancel the task, so the task observes run's own stop source, to
    // which a token it already had is forwarded.
    std::stop_source stop;
    std::optional<std::stop_callback<detail::request_stop_of>> forward;
    if (std::stop_token own = t.handle().promise().stop_token(); own.stop_possible()) {
        forward.emplace(std::move(own), detail::request_stop_of{&stop});
    }
    t = std::move(t).with_stop_token(stop.get_token());
    const auto h = t.handle();
    d.schedule(h);
    std::exception_ptr escaped;
    // Turns in a row that failed without reaping a completion: the loop itself is failing.
    constexpr int max_stalled_failures = 1000;
    int stalled_failures = 0;
    while (!h.done()) {
        if (d.idle()) {
            throw std::logic_error("tram::run: the task is suspended, but no operation is in "
                                   "flight and no coroutine is ready to resume it");
        }
        const std::uint64_t reaped_before = d.stats().cqes_reaped;
        try {
            d.run_turn(true);
        } catch (...) {
            if (!escaped) {
                escaped = std::current_exception();
                stop.request_stop();
                continue;
            }
            // The task must finish before its frame goes away: the kernel may still write into
            // it. So a later failure does not end the loop, unless the loop itself is failing.
            detail::log_unhandled("tram::run (while cancelling after an earlier one)",
                                  std::current_exception());
            stalled_failures = d.stats().cqes_reaped == reaped_before ? stalled_failures + 1 : 0;
            if (stalled_failures > max_stalled_failures) throw;
        }
    }
    d.submit();
    if (escaped) std::rethrow_exception(escaped);
    return h.promise().take_result();
}

} // namespace tram
