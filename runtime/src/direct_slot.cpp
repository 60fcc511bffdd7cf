#include <tram/direct_slot.hpp>
#include <tram/sqe.hpp>

namespace tram {

void direct_slot::reset() noexcept {
    const unsigned index = release();
    if (index == none || driver_ == nullptr) return;
    // Only the owning driver, on its thread, may prepare SQEs; elsewhere the slot stays taken
    // until the table goes away with the ring.
    if (current_driver() != driver_ || !driver_->on_driver_thread() || driver_->shutting_down()) {
        return;
    }
    try {
        io_uring_sqe& sqe = driver_->get_sqe();
        prep_close(sqe, registered_fd{index});
        // Like driver::close_detached: no CQE unless it fails, and user_data 0 (nobody waits).
        add_flags(sqe, sqe_flag::cqe_skip_success);
        set_user_data(sqe, std::uint64_t{0});
    } catch (...) {
        // The ring refused (it is failing as a whole): the slot goes with the table.
    }
}

} // namespace tram
