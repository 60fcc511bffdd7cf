// A deadline for any task, whatever it awaits.
#pragma once

#include <tram/error.hpp>
#include <tram/task.hpp>
#include <tram/timer.hpp>
#include <tram/when_any.hpp>

#include <cerrno>
#include <chrono>
#include <string>
#include <type_traits>
#include <utility>

namespace tram {
namespace detail {

// The deadline's side of the race: a sleep, cancelled (and so ended) when the task wins.
inline task<> sleep_task(std::chrono::nanoseconds duration) {
    [[maybe_unused]] const io_result r = co_await sleep_for(duration);
}

[[noreturn]] inline void throw_timed_out(std::chrono::nanoseconds duration) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
    throw_error(ETIME, "with_timeout",
                us % 1000 == 0 ? "no result within " + std::to_string(us / 1000) + " ms"
                               : "no result within " + std::to_string(us) + " us");
}

} // namespace detail

/// Runs `t` with a deadline: gives its value (or rethrows its exception) when it finishes
/// within `timeout`; otherwise asks it to stop, which cancels its I/O in the kernel, waits
/// until it has finished, and throws tram::error with ETIME ("with_timeout: no result within
/// 250 ms"), which tells a timeout apart from a cancellation (ECANCELED) and from the
/// operation's own errors. For any task: a multishot stream's `next()`, a chain of several
/// operations, a `when_all`. One SQE operation has a cheaper way, `.with_timeout(d)` on the
/// operation itself (one linked IORING_OP_LINK_TIMEOUT, no second coroutine). A result that
/// was ready in the same turn the deadline passed wins only if it finished first.
template <typename T, typename Rep, typename Period>
task<T> with_timeout(task<T> t, std::chrono::duration<Rep, Period> timeout) {
    const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
    auto first = co_await when_any(std::move(t), detail::sleep_task(duration));
    if (first.index() == 1) detail::throw_timed_out(duration);
    if constexpr (!std::is_void_v<T>) co_return std::move(std::get<0>(first));
}

} // namespace tram
