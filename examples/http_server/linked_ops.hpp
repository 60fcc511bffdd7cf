// A chain of up to four linked socket/pipe operations awaited as one, each but the last with
// IOSQE_CQE_SKIP_SUCCESS: "send the answers, then receive the next requests" costs one SQE
// batch and, when all goes well, one CQE.
#pragma once

#include <tram/operation.hpp>
#include <tram/sqe.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>

namespace http_server {

/// Steps linked with IOSQE_IO_LINK: each starts only when the one before succeeded in full
/// (a send or splice that comes up short breaks the link, like an error). Every step but the
/// last posts a CQE only when it fails, and then the kernel fails the steps after it without
/// posting theirs (REQ_F_SKIP_LINK_CQES: the failed step skipped success): so the chain posts
/// exactly one CQE, the failed step's or the last step's. The awaiting coroutine resumes then,
/// and reads each step's `result` (-ECANCELED for the steps after a failed one).
///
/// What the kernel reads or writes (the iovecs, the buffers) must stay valid until the
/// co_await returns; the chain keeps its msghdrs itself. No cancellation through stop
/// tokens: the server ends a chain by shutting its socket down, which ends every step.
class linked_ops final : private tram::detail::operation_base {
public:
    static constexpr unsigned max_steps = 4;

    linked_ops() noexcept
        : operation_base(&on_complete, &on_start, &on_cancel) {}
    linked_ops(const linked_ops&) = delete;
    linked_ops& operator=(const linked_ops&) = delete;

    /// Forgets the steps of the last chain.
    void clear() noexcept { count_ = 0; }
    [[nodiscard]] unsigned size() const noexcept { return count_; }

    /// sendmsg of `iov` (MSG_WAITALL | MSG_NOSIGNAL, MSG_MORE when `more`).
    void sendmsg(int fd, std::span<const iovec> iov, bool more) noexcept;
    /// splice of `length` bytes, offsets as splice(2) (tram::no_offset for a pipe or socket).
    void splice(int in, std::int64_t in_offset, int out, std::uint32_t length) noexcept;
    /// recv into `buf`: gives what arrived, 0 at end of stream.
    void recv(int fd, std::span<std::byte> buf) noexcept;

    /// The result of step `i`: the CQE's result, or, for a step whose success skipped its
    /// CQE, the count it was asked to move.
    [[nodiscard]] int result(unsigned i) const noexcept { return steps_[i].result; }
    /// Whether step `i` moved all it was asked to (a recv: did not fail).
    [[nodiscard]] bool succeeded(unsigned i) const noexcept {
        const step& s = steps_[i];
        return s.kind == step_kind::recv ? s.result >= 0 : s.result == static_cast<int>(s.expected);
    }

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> waiter);
    void await_resume() const noexcept {}

private:
    enum class step_kind : unsigned char { sendmsg, splice, recv };
    struct step {
        step_kind kind;
        int fd;
        int in_fd;
        std::int64_t in_offset;
        std::uint32_t expected;
        int result;
        msghdr msg;
        std::span<std::byte> buf;
    };

    void submit();
    static void on_complete(operation_base& base, const tram::completion& c) noexcept;
    static void on_start(operation_base& base) noexcept;
    static void on_cancel(operation_base&) noexcept {}

    std::array<step, max_steps> steps_{};
    unsigned count_ = 0;
    tram::driver* driver_ = nullptr;
    std::coroutine_handle<> waiter_;
};

} // namespace http_server
