// Running a task to completion on a driver, from ordinary (non-coroutine) code.
#pragma once

#include <tram/driver.hpp>
#include <tram/task.hpp>

#include <exception>
#include <stdexcept>
#include <stop_token>

namespace tram {

/// Runs the loop of `d` until `t` has finished, and returns its value or rethrows its
/// exception. If an exception escapes a detached task meanwhile, `t` is cancelled (a stop
/// request on its stop token), run waits for it to finish, then rethrows that exception.
/// Throws std::logic_error if `t` waits for something that nothing in the driver can bring.
template <typename T>
T run(driver& d, task<T> t) {
    std::stop_source stop;
    if (!t.handle().promise().stop_token().stop_possible()) {
        t = std::move(t).with_stop_token(stop.get_token());
    }
    const auto h = t.handle();
    d.schedule(h);
    std::exception_ptr escaped;
    while (!h.done()) {
        if (d.idle()) {
            throw std::logic_error("tram::run: the task is suspended, but no operation is in "
                                   "flight and no coroutine is ready to resume it");
        }
        try {
            d.run_turn(true);
        } catch (...) {
            if (escaped) throw; // the loop itself fails while cancelling: give up
            escaped = std::current_exception();
            stop.request_stop();
        }
    }
    if (escaped) std::rethrow_exception(escaped);
    return h.promise().take_result();
}

} // namespace tram
