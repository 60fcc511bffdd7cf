// An io_uring instance: the ring fd, its mappings, and the system calls that drive it.
#pragma once

#include <tram/completion_queue.hpp>
#include <tram/mapping.hpp>
#include <tram/setup.hpp>
#include <tram/submission_queue.hpp>
#include <tram/unique_fd.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

namespace tram {

/// An io_uring instance set up with io_uring_setup(2). It owns the ring fd and every mapping.
/// It is neither copyable nor movable, because queues, ranges and registrars point into it:
/// hold it by value in its owner, or in a unique_ptr. The queues are reached through `sq()` and
/// `cq()`; the `submit*` and `wait*` calls are the only places that enter the kernel.
///
/// Results of the calls that enter the kernel are `int`: >= 0 on success, a negated errno
/// otherwise. -EINTR (a signal), -EAGAIN and -EBUSY (the kernel is short of resources, or
/// completions must be reaped first) are expected conditions to retry after reaping; -ETIME
/// means a timed wait ran out.
class ring {
public:
    /// Sets up a ring. Throws tram::error naming the cause: ENOSYS (no io_uring in this
    /// kernel), EPERM (disabled by the kernel.io_uring_disabled sysctl or a sandbox), ENOMEM
    /// (out of locked memory or kernel memory), EINVAL (a flag or size this kernel rejects).
    explicit ring(const ring_options& options = {});
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring();

    [[nodiscard]] submission_queue& sq() noexcept { return sq_; }
    [[nodiscard]] const submission_queue& sq() const noexcept { return sq_; }
    [[nodiscard]] completion_queue& cq() noexcept { return cq_; }
    [[nodiscard]] const completion_queue& cq() const noexcept { return cq_; }

    /// Shorthand for `sq().get_sqe()`.
    [[nodiscard]] io_uring_sqe* get_sqe() noexcept { return sq_.get_sqe(); }

    /// The ring fd (for registration, MSG_RING, or polling: it is readable while completions
    /// are waiting).
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] setup_flags flags() const noexcept { return flags_; }
    [[nodiscard]] tram::features features() const noexcept { return features_; }
    /// The ring fd's index in its own registered-ring table, if it was registered. The table
    /// belongs to the thread that set the ring up: other threads enter through the plain fd.
    [[nodiscard]] std::optional<unsigned> registered_index() const noexcept;

    /// Publishes the prepared SQEs and tells the kernel about them (with SQPOLL only when the
    /// poller sleeps). Returns how many the kernel consumed, or -errno.
    [[nodiscard]] int submit() noexcept;
    /// `submit()`, then waits until at least `want` completions are in the CQ.
    [[nodiscard]] int submit_and_wait(unsigned want) noexcept;
    /// `submit()`, then waits for `want` completions or until `timeout` passes. Returns -ETIME
    /// when the time ran out and nothing was submitted; when SQEs were submitted the kernel
    /// reports their count even if the wait then timed out, so check `cq().ready()`.
    /// Needs IORING_FEAT_EXT_ARG (5.11); returns -EOPNOTSUPP without it.
    [[nodiscard]] int submit_and_wait(unsigned want, std::chrono::nanoseconds timeout) noexcept;
    /// `submit()`, then waits for `want` completions; once `min_wait` has passed it returns as
    /// soon as one is there, and after `timeout` with none at all, -ETIME. Completions that
    /// arrive close together are reaped after one system call, and a lone one waits at most
    /// `min_wait` longer. Needs IORING_FEAT_MIN_TIMEOUT (6.12); returns -EOPNOTSUPP without it.
    [[nodiscard]] int submit_and_wait_batch(unsigned want, std::chrono::microseconds min_wait,
                                            std::chrono::nanoseconds timeout) noexcept;
    /// io_uring_enter(2) as it is, using the registered ring index when there is one.
    [[nodiscard]] int enter(unsigned to_submit, unsigned min_complete, unsigned flags,
                            const void* arg = nullptr, std::size_t arg_size = 0) noexcept;
    /// Lets the kernel move overflowed completions and pending task work into the CQ, if the
    /// SQ flags say there are any; no system call otherwise.
    [[nodiscard]] int flush_completions() noexcept;

    /// The completions waiting now; the iteration ends when there are no more.
    [[nodiscard]] completion_range completions() noexcept { return {cq_, nullptr}; }
    /// An endless iteration over completions that waits in the kernel whenever the CQ is
    /// empty (retrying EINTR). Leave it with `break`; the completions seen are consumed.
    [[nodiscard]] completion_range wait_completions() noexcept { return {cq_, this}; }

    /// Enables a ring set up with R_DISABLED (5.10).
    void enable();

    /// io_uring_register(2) on this ring; >= 0 or -errno.
    [[nodiscard]] int register_raw(unsigned opcode, const void* arg, unsigned nr_args) noexcept;

private:
    // submit(), then io_uring_enter with GETEVENTS and the extended argument `arg`.
    [[nodiscard]] int enter_with(unsigned want, uapi::getevents_arg& arg) noexcept;
    friend class completion_range;

    void map_rings(const io_uring_params& params);
    void register_ring_fd() noexcept;

    unique_fd fd_;
    mapping sq_ring_;
    mapping cq_ring_; // empty with IORING_FEAT_SINGLE_MMAP: the CQ lives in sq_ring_
    mapping sqes_;
    submission_queue sq_;
    completion_queue cq_;
    setup_flags flags_;
    tram::features features_;
    int enter_fd_ = -1;        // the registered index, or the fd itself
    unsigned enter_flags_ = 0; // IORING_ENTER_REGISTERED_RING when registered
    // The thread whose registered-ring table holds enter_fd_ (an address unique to it).
    const void* registered_by_ = nullptr;
};

} // namespace tram
