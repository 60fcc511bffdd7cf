// Ownership of a file descriptor by an awaitable type (file, socket...).
#pragma once

#include <tram/driver.hpp>
#include <tram/operation.hpp>

#include <unistd.h>

#include <utility>

namespace tram {

/// Owns a descriptor for the awaitable types. Destruction never blocks the loop: on a
/// driver's thread the close goes through the ring (IORING_OP_CLOSE, fire and forget),
/// elsewhere it is a plain close(2). `co_await close()` closes through the ring and reports
/// the result, for callers who care about errors of close (NFS, for example).
class descriptor {
public:
    constexpr descriptor() noexcept = default;
    constexpr explicit descriptor(int fd) noexcept : fd_(fd) {}
    descriptor(descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    descriptor& operator=(descriptor&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~descriptor() { reset(); }

    [[nodiscard]] constexpr int fd() const noexcept { return fd_; }
    [[nodiscard]] constexpr bool is_open() const noexcept { return fd_ >= 0; }
    /// Gives up ownership without closing.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the descriptor through the ring; `co_await` gives the io_result of the close.
    /// The descriptor counts as closed from the moment the close is awaited.
    [[nodiscard]] auto close() noexcept {
        return make_operation([fd = std::exchange(fd_, -1)](io_uring_sqe& sqe) noexcept {
            prep_close(sqe, fd);
        });
    }

    /// Closes without waiting (see the class comment).
    void reset() noexcept {
        const int fd = std::exchange(fd_, -1);
        if (fd < 0) return;
        driver* d = current_driver();
        if (d != nullptr && d->on_driver_thread() && !d->shutting_down()) {
            try {
                d->close_detached(fd);
                return;
            } catch (...) {
                // The ring refused (it is failing as a whole): fall back to close(2).
            }
        }
        ::close(fd);
    }

private:
    int fd_ = -1;
};

} // namespace tram
