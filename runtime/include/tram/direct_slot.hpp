// Ownership of one slot in a driver's registered file table.
#pragma once

#include <tram/driver.hpp>
#include <tram/registered.hpp>
#include <tram/sqe.hpp>

#include <utility>

namespace tram {

/// One slot of a driver's registered file table, owned the way `descriptor` owns an fd: what
/// `direct_file` and `direct_stream` hold. The destructor (and `reset`) closes the slot
/// through the ring without waiting, when it runs on the driver's thread; elsewhere, or once
/// the driver shuts down, the slot goes with the ring's table. It must not outlive its driver.
class direct_slot {
public:
    static constexpr unsigned none = ~0U;

    direct_slot() noexcept = default;
    /// Takes ownership of slot `index` of `owner`'s table.
    direct_slot(driver& owner, unsigned index) noexcept
        : driver_(&owner)
        , index_(index) {}
    direct_slot(direct_slot&& other) noexcept
        : driver_(other.driver_)
        , index_(other.release()) {}
    direct_slot& operator=(direct_slot&& other) noexcept {
        if (this != &other) {
            reset();
            driver_ = other.driver_;
            index_ = other.release();
        }
        return *this;
    }
    ~direct_slot() { reset(); }

    [[nodiscard]] bool is_open() const noexcept { return index_ != none; }
    /// The slot for SQEs. A closed one names index ~0U, which the kernel refuses with EBADF.
    [[nodiscard]] registered_fd get() const noexcept { return {index_}; }
    /// Gives the slot up without closing it; `none` if there was none.
    [[nodiscard]] unsigned release() noexcept { return std::exchange(index_, none); }
    /// Closes the slot without waiting (see the class comment).
    void reset() noexcept;

private:
    driver* driver_ = nullptr;
    unsigned index_ = none;
};

/// IORING_OP_CLOSE of slot `index` (a `direct_slot::release()`), or, for `none`, of fd -1 (a
/// clean EBADF), so that closing what is already closed never becomes "close fd 0".
inline void prep_close_slot(io_uring_sqe& sqe, unsigned index) noexcept {
    if (index == direct_slot::none) {
        prep_close(sqe, -1);
    } else {
        prep_close(sqe, registered_fd{index});
    }
}

} // namespace tram
