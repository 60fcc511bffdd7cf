// Helpers the runtime tests share: a one-byte read through the driver, and a bounded wait for
// something another thread makes true.
#pragma once

#include <tram/operation.hpp>
#include <tram/sqe.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <thread>

namespace tram::test {

/// `co_await read_op(fd, &byte)`: one IORING_OP_READ of a byte at the current position, through
/// the current driver (a pipe's read end that stays empty keeps it in flight).
[[nodiscard]] inline auto read_op(int fd, std::byte* into) {
    return make_operation([fd, into](io_uring_sqe& sqe) noexcept {
        prep_read(sqe, fd, std::span(into, 1), current_position);
    });
}

/// Polls `done` every millisecond for up to `limit`; true once it holds. The tests never wait
/// unboundedly.
template <typename Pred>
[[nodiscard]] bool eventually(Pred done,
                              std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

} // namespace tram::test
