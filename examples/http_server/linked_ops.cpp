#include "linked_ops.hpp"

#include <cassert>
#include <cerrno>

namespace http_server {

void linked_ops::sendmsg(int fd, std::span<const iovec> iov, bool more) noexcept {
    assert(count_ < max_steps);
    step& s = steps_[count_++];
    s = step{};
    s.kind = step_kind::sendmsg;
    s.fd = fd;
    s.msg.msg_iov = const_cast<iovec*>(iov.data());
    s.msg.msg_iovlen = iov.size();
    std::size_t total = 0;
    for (const iovec& v : iov)
        total += v.iov_len;
    s.expected = static_cast<std::uint32_t>(total);
    s.in_fd = more ? MSG_MORE : 0; // a send has no input: the field carries its extra flags
}

void linked_ops::splice(int in, std::int64_t in_offset, int out, std::uint32_t length) noexcept {
    assert(count_ < max_steps);
    step& s = steps_[count_++];
    s = step{};
    s.kind = step_kind::splice;
    s.fd = out;
    s.in_fd = in;
    s.in_offset = in_offset;
    s.expected = length;
}

void linked_ops::recv(int fd, std::span<std::byte> buf) noexcept {
    assert(count_ < max_steps);
    step& s = steps_[count_++];
    s = step{};
    s.kind = step_kind::recv;
    s.fd = fd;
    s.buf = buf;
}

void linked_ops::await_suspend(std::coroutine_handle<> waiter) {
    assert(count_ > 0);
    driver_ = tram::current_driver();
    waiter_ = waiter;
    // Until the CQEs say otherwise, every step succeeded.
    for (unsigned i = 0; i < count_; ++i)
        steps_[i].result = static_cast<int>(steps_[i].expected);
    if (driver_->acquire_slot(*this)) submit();
}

void linked_ops::submit() {
    tram::sqe_range sqes = driver_->get_sqes(count_);
    for (unsigned i = 0; i < count_; ++i) {
        step& s = steps_[i];
        io_uring_sqe& sqe = sqes[i];
        switch (s.kind) {
        case step_kind::sendmsg:
            // WAITALL: the kernel keeps sending until all is gone, instead of a short count
            // that would break the link and cost a round trip.
            if (s.msg.msg_iovlen == 1) {
                // One buffer: IORING_OP_SEND spares the kernel importing a msghdr and iovec.
                const iovec& v = s.msg.msg_iov[0];
                tram::prep_send(sqe, s.fd, {static_cast<const std::byte*>(v.iov_base), v.iov_len},
                                MSG_NOSIGNAL | MSG_WAITALL | s.in_fd);
            } else {
                tram::prep_sendmsg(sqe, s.fd, &s.msg, MSG_NOSIGNAL | MSG_WAITALL | s.in_fd);
            }
            break;
        case step_kind::splice:
            tram::prep_splice(sqe, s.in_fd, s.in_offset, s.fd, tram::no_offset, s.expected, 0);
            break;
        case step_kind::recv:
            tram::prep_recv(sqe, s.fd, s.buf, 0);
            break;
        }
        tram::set_user_data(sqe, user_data(i));
        if (i + 1 < count_) {
            tram::add_flags(sqe, tram::sqe_flag::io_link | tram::sqe_flag::cqe_skip_success);
        }
    }
}

void linked_ops::on_start(operation_base& base) noexcept {
    static_cast<linked_ops&>(base).submit();
}

void linked_ops::on_complete(operation_base& base, const tram::completion& c) noexcept {
    auto& self = static_cast<linked_ops&>(base);
    const auto index = static_cast<unsigned>(c.user_data & tram::detail::user_data_tag_mask);
    self.steps_[index].result = c.result;
    // A step before the last posts a CQE only when it fails, and the kernel posts none for
    // the steps it then cancels: this CQE is the chain's only one either way. (Waiting for
    // the last step's CQE here left the chain in flight for ever: its connection stuck and
    // the driver's shutdown waiting on it.)
    for (unsigned i = index + 1; i < self.count_; ++i)
        self.steps_[i].result = -ECANCELED;
    self.driver_->release_slot();
    self.driver_->schedule(self.waiter_);
}

} // namespace http_server
