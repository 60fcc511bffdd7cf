// Connected byte streams in a slot of the ring's registered (fixed) file table: what
// `basic_listener::accept_direct` and `incoming_direct` give.
#pragma once

#include <tram/address.hpp>
#include <tram/direct_slot.hpp>
#include <tram/driver.hpp>
#include <tram/registered.hpp>
#include <tram/socket.hpp>
#include <tram/sqe.hpp>

#include <string>
#include <utility>

namespace tram {

/// A connection accepted straight into a slot of the driver's registered file table
/// (IORING_OP_ACCEPT with IORING_FILE_INDEX_ALLOC): no descriptor is ever installed in the
/// process, and every op sets IOSQE_FIXED_FILE, which spares the kernel the descriptor lookup
/// and reference count of each op. It has the I/O of `tcp_stream` (`detail::basic_stream`:
/// send/recv, send_all/recv_exact, sendmsg/recvmsg, send_zc, send_then_recv, shutdown, with
/// `.with_timeout(d)` and cancellation by stop request), and the same error messages.
///
/// The table must exist: `registrar(driver.ring()).register_files_sparse(n)` before the accept
/// (an accept without one throws tram::error ENXIO "accept ADDR: no registered file table
/// ..."; a full table, ENFILE: the kernel has accepted that connection before it looks for a
/// slot, and closes it, so its client sees end of stream). Owns its slot: `co_await close()` frees
/// it through the ring (IORING_OP_CLOSE of the fixed index) and reports errors; the destructor
/// frees it without waiting when it runs on its driver's thread (elsewhere, or once the driver
/// shuts down, the slot goes with the ring's table). It must not outlive its driver, and is used on
/// its driver's thread only (the slot means nothing to another ring).
///
/// What a direct descriptor cannot do: it is no descriptor of the process, so system calls
/// (setsockopt, getsockopt, getpeername, getsockname) cannot name it, and tram offers no
/// options or addresses here rather than fake them. Set options on the listener (accepted
/// sockets inherit most), or through the ring with `prep_socket_cmd` on `ref()`
/// (SOCKET_URING_OP_SETSOCKOPT, 6.7). Its errors name the peer's address when the accept
/// reported it (`accept_direct`), else "direct socket slot N" (`incoming_direct`: a multishot
/// accept gives no address). A `recv_stream` (multishot recv into a buffer ring) works on it.
class direct_stream : public detail::basic_stream<direct_stream> {
public:
    static constexpr bool is_direct = true;

    direct_stream() noexcept = default;
    /// Takes ownership of slot `slot` of `owner`'s file table; `peer` names it in errors.
    direct_stream(driver& owner, unsigned slot, socket_address peer = {}) noexcept
        : slot_(owner, slot)
        , name_(std::move(peer)) {}

    [[nodiscard]] bool is_open() const noexcept { return slot_.is_open(); }
    /// The slot, for prep functions and other ops (`splice`, `prep_socket_cmd`...).
    [[nodiscard]] registered_fd slot() const noexcept { return slot_.get(); }
    /// The peer's address as the accept reported it (empty after a multishot accept).
    [[nodiscard]] const socket_address& name() const noexcept { return name_; }
    /// What error messages call this stream: `name()`, else "direct socket slot N".
    [[nodiscard]] std::string describe() const;

    /// Closes the slot through the ring (IORING_OP_CLOSE with file_index) and reports errors
    /// (tram::error naming the stream). The stream counts as closed from the moment this is
    /// called, and its slot is free for the next direct accept or open once the close is in.
    [[nodiscard]] auto close() noexcept {
        return detail::socket_op<false>(
            "close", *this,
            [slot = slot_.release()](io_uring_sqe& sqe) noexcept { prep_close_slot(sqe, slot); });
    }
    /// Closes without waiting (see the class comment).
    void reset() noexcept { slot_.reset(); }

private:
    friend class detail::basic_socket_io<direct_stream>;
    [[nodiscard]] file_ref ref_impl() const noexcept { return slot_.get(); }

    direct_slot slot_;
    socket_address name_;
};

namespace detail {

/// Throws the error of an accept into the file table that failed with `errnum`: the kernel's
/// ENXIO, or the ENFILE it gives for IORING_FILE_INDEX_ALLOC when there is no table at all
/// (told apart from a full table by asking the ring), becomes ENXIO "accept ADDR: no
/// registered file table (...)"; a full table is ENFILE "accept ADDR: the registered file
/// table is full"; anything else is `throw_socket_error`'s.
[[noreturn]] void throw_direct_accept_error(driver& d, int errnum, const socket& listener);

} // namespace detail
} // namespace tram
