// Letting other coroutines run.
#pragma once

#include <tram/driver.hpp>

#include <coroutine>

namespace tram {

/// `co_await yield()` suspends the coroutine and resumes it on the driver's next loop turn,
/// after the coroutines that are ready now and after a look at the ring.
struct yield_awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { current_driver()->schedule(h); }
    void await_resume() const noexcept {}
};

[[nodiscard]] inline yield_awaiter yield() noexcept { return {}; }

} // namespace tram
