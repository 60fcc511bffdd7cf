#include "reap.hpp"

#include <catch2/catch.hpp>

#include <cerrno>

namespace tram::test {

std::vector<completion> reap(ring& r, unsigned count, std::chrono::nanoseconds timeout) {
    std::vector<completion> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (const completion& c : r.completions()) {
            out.push_back(c);
            if (out.size() == count) break;
        }
        if (out.size() >= count) break;
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds::zero()) break;
        const int res = r.submit_and_wait(count - static_cast<unsigned>(out.size()), left);
        if (res < 0 && res != -ETIME && res != -EINTR && res != -EAGAIN && res != -EBUSY) {
            FAIL("io_uring_enter failed while reaping: " << res);
        }
    }
    INFO("completions wanted: " << count << ", arrived in time: " << out.size());
    REQUIRE(out.size() == count);
    return out;
}

completion reap_one(ring& r, std::chrono::nanoseconds timeout) { return reap(r, 1, timeout)[0]; }

std::vector<completion> reap_for(ring& r, std::chrono::nanoseconds window) {
    std::vector<completion> out;
    const auto deadline = std::chrono::steady_clock::now() + window;
    for (;;) {
        for (const completion& c : r.completions())
            out.push_back(c);
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds::zero()) break;
        (void)r.submit_and_wait(1, left);
    }
    return out;
}

io_uring_sqe& sqe_of(ring& r) {
    io_uring_sqe* sqe = r.get_sqe();
    REQUIRE(sqe != nullptr);
    return *sqe;
}

} // namespace tram::test
