// Timers on the ring: sleeping with IORING_OP_TIMEOUT.
#pragma once

#include <tram/operation.hpp>

#include <chrono>

namespace tram {

/// Awaits a timeout SQE. `co_await` gives an `io_result` that is `ok()` when the time has
/// passed and `cancelled()` when the sleep was cancelled by a stop request.
class sleep_awaiter final : public io_awaiter<sleep_awaiter> {
public:
    sleep_awaiter(__kernel_timespec when, std::uint32_t timeout_flags) noexcept
        : when_(when), flags_(timeout_flags) {}
    void prepare(io_uring_sqe& sqe) noexcept { prep_timeout(sqe, &when_, 0, flags_); }
    io_result await_resume() noexcept {
        const io_result r = io_awaiter::await_resume();
        return r.raw() == -ETIME ? io_result(0) : r; // for a sleep, expiry is success
    }

private:
    __kernel_timespec when_;
    std::uint32_t flags_;
};

namespace detail {
inline __kernel_timespec to_timespec(std::chrono::nanoseconds d) noexcept {
    const auto ns = std::max<std::chrono::nanoseconds::rep>(d.count(), 0);
    return {ns / 1'000'000'000, ns % 1'000'000'000};
}
} // namespace detail

/// Sleeps for `duration` without blocking the thread.
template <typename Rep, typename Period>
[[nodiscard]] sleep_awaiter sleep_for(std::chrono::duration<Rep, Period> duration) noexcept {
    return {detail::to_timespec(std::chrono::duration_cast<std::chrono::nanoseconds>(duration)), 0};
}

/// Sleeps until `deadline` on the monotonic clock (steady_clock is CLOCK_MONOTONIC on Linux,
/// the clock io_uring timeouts use by default).
template <typename Duration>
[[nodiscard]] sleep_awaiter
sleep_until(std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) noexcept {
    return {detail::to_timespec(deadline.time_since_epoch()), IORING_TIMEOUT_ABS};
}

} // namespace tram
