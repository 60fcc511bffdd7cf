#include <tram/driver.hpp>
#include <tram/error.hpp>
#include <tram/probe.hpp>
#include <tram/uapi.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <poll.h>
#include <utility>

namespace tram {
namespace {

thread_local driver* current = nullptr;

// Sets the thread's current driver for the length of a scope.
class current_scope {
public:
    explicit current_scope(driver* d) noexcept
        : previous_(std::exchange(current, d)) {}
    current_scope(const current_scope&) = delete;
    current_scope& operator=(const current_scope&) = delete;
    ~current_scope() { current = previous_; }

private:
    driver* previous_;
};

// Marks a driver's loop turn as running, also when the turn ends by an exception.
class turn_scope {
public:
    explicit turn_scope(bool& in_turn) noexcept
        : in_turn_(in_turn)
        , previous_(std::exchange(in_turn, true)) {}
    turn_scope(const turn_scope&) = delete;
    turn_scope& operator=(const turn_scope&) = delete;
    ~turn_scope() { in_turn_ = previous_; }

private:
    bool& in_turn_;
    bool previous_;
};

bool is_setup_rejection(const error& e) noexcept { return e.errnum() == EINVAL; }

// A driver's shutdown cancels whatever is in flight with one IORING_ASYNC_CANCEL_ANY, which
// came with Linux 5.19; on an older kernel that cancel fails, and the shutdown would wait
// forever for operations nobody cancelled. The probe cannot ask about cancel flags, so it asks
// about IORING_OP_SOCKET, which came with the same release. Once per process: the kernel does
// not change under it.
void require_cancel_any(tram::ring& r) {
    static const bool supported = [&r] {
        try {
            return probe(r).supports(opcode::socket);
        } catch (const error&) {
            return false; // no IORING_REGISTER_PROBE either (before 5.6)
        }
    }();
    if (!supported) {
        throw_error(ENOSYS, "tram::driver",
                    "it needs Linux 5.19 or later (IORING_ASYNC_CANCEL_ANY, to cancel what is in "
                    "flight at shutdown)");
    }
}

} // namespace

driver* current_driver() noexcept { return current; }

tram::ring driver::make_ring(const driver_options& options) {
    ring_options ro;
    ro.entries = options.entries;
    ro.cq_entries = options.cq_entries != 0 ? options.cq_entries : options.entries * 4;
    ro.attach_wq_fd = options.attach_wq_fd;
    if (options.sqpoll) {
        ro.flags = setup_flag::sqpoll | setup_flag::single_issuer;
        ro.sq_thread_idle = options.sqpoll_idle;
        try {
            return tram::ring(ro);
        } catch (const error& e) {
            if (!is_setup_rejection(e)) throw;
        }
        ro.flags = setup_flag::sqpoll; // before 6.0, SQPOLL and SINGLE_ISSUER do not mix
        return tram::ring(ro);
    }
    // From the best the kernel may offer to what every kernel has. DEFER_TASKRUN (6.1) runs
    // completion work only when we enter the kernel, in a batch, and never interrupts the
    // thread; COOP_TASKRUN (5.19) at least avoids interrupting it with an IPI; TASKRUN_FLAG
    // tells us when an enter is needed to see completions; SUBMIT_ALL (5.18) keeps a bad SQE
    // from stopping the rest of a batch.
    const setup_flags candidates[] = {
        setup_flag::single_issuer | setup_flag::defer_taskrun | setup_flag::taskrun_flag |
            setup_flag::submit_all,
        setup_flag::single_issuer | setup_flag::coop_taskrun | setup_flag::taskrun_flag |
            setup_flag::submit_all,
        setup_flag::coop_taskrun | setup_flag::taskrun_flag | setup_flag::submit_all,
        setup_flag::submit_all,
        setup_flags{},
    };
    for (setup_flags flags : candidates) {
        if (options.pollable && flags.contains(setup_flag::defer_taskrun)) continue;
        ro.flags = flags;
        try {
            return tram::ring(ro);
        } catch (const error& e) {
            if (!is_setup_rejection(e) || flags.empty()) throw;
        }
    }
    throw_error(EINVAL, "driver", "no ring setup was accepted");
}

driver::driver(const driver_options& options)
    : ring_(make_ring(options))
    , owner_(std::this_thread::get_id())
    , in_flight_limit_(options.max_in_flight != 0 ? options.max_in_flight : ~0U)
    , batch_completions_(ring_.features().contains(feature::min_timeout) ? options.batch_completions
                                                                         : 0)
    , batch_window_usec_(static_cast<std::uint32_t>(
          std::clamp<std::chrono::microseconds::rep>(options.batch_window.count(), 1, 1'000'000)))
    , previous_current_(std::exchange(current, this)) {
    try {
        require_cancel_any(ring_);
        ready_.reserve(256);
        next_ready_.reserve(256);
        const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) throw_error(errno, "eventfd", "creating the driver's wake-up descriptor");
        wake_fd_.reset(fd);
    } catch (...) {
        current = previous_current_; // no destructor runs to unlink a driver never made
        throw;
    }
}

driver::~driver() {
    shutdown();
    // Unlink this driver from the thread's chain of current drivers, wherever it is in it:
    // drivers need not be destroyed in the reverse order of their construction, and a
    // later one must not hand a destroyed one back as current.
    for (driver** link = &current; *link != nullptr; link = &(*link)->previous_current_) {
        if (*link == this) {
            *link = previous_current_;
            break;
        }
    }
}

bool driver::has_pending_work() const noexcept {
    // TASKRUN and CQ_OVERFLOW: completions that only a run_once (its enter) brings into the CQ.
    // An unarmed wake-up poll (before the first turn, or after the kernel ended it): only a
    // turn arms it, and until then a host asleep on fd() misses other threads' wake-ups.
    const submission_queue& sq = ring_.sq();
    return !next_ready_.empty() || !unhandled_.empty() || sq.unpublished() > 0 ||
           ring_.cq().ready() > 0 || sq.taskrun() || sq.cq_overflow() ||
           (!wake_poll_armed_ && !shutting_down_);
}

void driver::run_turn(bool may_block) {
    current_scope scope(this);
    const turn_scope turn(in_turn_);
    ++stats_.turns;
    take_remote_work();
    // Exceptions still to rethrow keep the turn from sleeping: it must come back to them.
    enter_kernel(may_block && next_ready_.empty() && unhandled_.empty());
    reap();
    run_ready();
    if (!unhandled_.empty()) {
        // One per turn, in the order they escaped; the next turn rethrows the next.
        std::exception_ptr e = std::move(unhandled_.front());
        unhandled_.erase(unhandled_.begin());
        std::rethrow_exception(std::move(e));
    }
}

void driver::submit() { enter_kernel(false); }

void driver::run_ready() {
    // Only what was ready when the turn began runs now; what it makes ready runs next turn,
    // so that a coroutine that keeps yielding cannot starve the ring.
    ready_.swap(next_ready_);
    for (std::coroutine_handle<> h : ready_)
        h.resume();
    ready_.clear();
}

void driver::enter_kernel(bool may_wait) {
    submission_queue& sq = ring_.sq();
    const unsigned newly_published = sq.unpublished();
    const unsigned to_submit = sq.flush();
    const bool sqpoll = ring_.flags().contains(setup_flag::sqpoll);
    // Under SQPOLL the poller consumes what is published, with or without an enter: an SQE
    // counts as submitted once, when it is published.
    if (sqpoll) stats_.sqes_submitted += newly_published;
    // Wait only when there is something to wait for and nothing else to do.
    const bool wait = may_wait && ring_.cq().ready() == 0 && (in_flight_ > 0 || wake_poll_armed_);
    const bool flush = sq.taskrun() || sq.cq_overflow();

    unsigned flags = 0;
    if (wait || flush) flags |= IORING_ENTER_GETEVENTS;
    if (sqpoll) {
        if (to_submit > 0 && sq.need_wakeup()) flags |= IORING_ENTER_SQ_WAKEUP;
    }
    const bool needed = (!sqpoll && to_submit > 0) || flags != 0;
    if (!needed) return;

    ++stats_.enters;
    if (wait) ++stats_.waits;
    const unsigned batch = wait ? batch_size() : 0;
    int r = 0;
    if (batch > 1) {
        // The kernel ends the batch window early only when there is also an overall timeout
        // (without one, the window is the timeout): a long one, which a quiet loop may meet
        // (ETIME), then waits again.
        static constexpr __kernel_timespec quiet{.tv_sec = 3600, .tv_nsec = 0};
        uapi::getevents_arg arg{};
        arg.sigmask_sz = _NSIG / 8;
        arg.min_wait_usec = batch_window_usec_;
        arg.ts = reinterpret_cast<std::uintptr_t>(&quiet);
        r = ring_.enter(sqpoll ? 0 : to_submit, batch, flags | IORING_ENTER_EXT_ARG, &arg,
                        sizeof(arg));
    } else {
        r = ring_.enter(sqpoll ? 0 : to_submit, wait ? 1 : 0, flags);
    }
    if (r >= 0) {
        if (!sqpoll) stats_.sqes_submitted += static_cast<unsigned>(r);
        return;
    }
    switch (-r) {
    case ETIME:  // a batched wait met its overall timeout: the next turn waits again
    case EINTR:  // a signal: the turn goes on, the next one enters again
    case EAGAIN: // the kernel is short of memory for requests: reap, then retry
    case EBUSY:  // the CQ overflow list is full: reaping makes room
        return;
    case EBADR:
        throw_error(EBADR, "io_uring_enter",
                    "the kernel dropped completions because the CQ overflowed (no NODROP)");
    default:
        throw_error(-r, "io_uring_enter");
    }
}

unsigned driver::batch_size() const noexcept {
    // A quarter of those in flight: many of them (idle connections) may not complete soon.
    if (batch_completions_ == 0 || in_flight_ < 8) return 1;
    return std::min(batch_completions_, in_flight_ / 4);
}

void driver::reap() {
    for (const completion& c : ring_.completions()) {
        ++stats_.cqes_reaped;
        dispatch(c);
    }
}

void driver::dispatch(const completion& c) noexcept {
    if (c.user_data == 0) return; // a cancel request's own CQE
    auto* op = reinterpret_cast<detail::operation_base*>(c.user_data & ~detail::user_data_tag_mask);
    op->on_complete_(*op, c);
}

io_uring_sqe& driver::get_sqe() {
    for (;;) {
        if (io_uring_sqe* sqe = ring_.sq().get_sqe()) return *sqe;
        enter_kernel(false);
    }
}

sqe_range driver::get_sqes(unsigned count) {
    for (;;) {
        if (auto range = ring_.sq().reserve(count)) return *range;
        if (count > ring_.sq().capacity()) {
            throw_error(EINVAL, "driver::get_sqes", "more SQEs than the SQ holds");
        }
        enter_kernel(false);
    }
}

bool driver::acquire_slot(detail::operation_base& op) noexcept {
    if (in_flight_ < in_flight_limit_ && waiting_head_ == nullptr) {
        ++in_flight_;
        return true;
    }
    op.next_waiting_ = nullptr;
    (waiting_tail_ ? waiting_tail_->next_waiting_ : waiting_head_) = &op;
    waiting_tail_ = &op;
    return false;
}

void driver::release_slot() noexcept {
    --in_flight_;
    if (waiting_head_ == nullptr || shutting_down_) return;
    detail::operation_base* op = waiting_head_;
    waiting_head_ = op->next_waiting_;
    if (waiting_head_ == nullptr) waiting_tail_ = nullptr;
    ++in_flight_;
    op->on_start_(*op);
}

bool driver::forget_waiting(detail::operation_base& op) noexcept {
    detail::operation_base* prev = nullptr;
    for (auto* it = waiting_head_; it != nullptr; prev = it, it = it->next_waiting_) {
        if (it != &op) continue;
        (prev ? prev->next_waiting_ : waiting_head_) = it->next_waiting_;
        if (waiting_tail_ == it) waiting_tail_ = prev;
        return true;
    }
    return false;
}

void driver::cancel(std::uint64_t user_data) {
    io_uring_sqe& sqe = get_sqe();
    prep_cancel(sqe, user_data);
    set_user_data(sqe, std::uint64_t{0});
}

void driver::close_detached(int fd) {
    io_uring_sqe& sqe = get_sqe();
    prep_close(sqe, fd);
    // No CQE needed: nothing waits for it, and it must not count against the in-flight cap.
    add_flags(sqe, sqe_flag::cqe_skip_success);
    set_user_data(sqe, std::uint64_t{0});
}

void driver::post_cancel(detail::operation_base& op) {
    {
        std::lock_guard lock(remote_mutex_);
        remote_cancels_.push_back(&op);
    }
    remote_wake_pending_.store(true, std::memory_order_release); // see take_remote_work
    wake();
}

void driver::withdraw_cancel(detail::operation_base& op) noexcept {
    std::lock_guard lock(remote_mutex_);
    std::erase(remote_cancels_, &op);
}

void driver::schedule_remote(std::coroutine_handle<> h, detail::detached_link* adopt) {
    if (on_driver_thread()) {
        if (adopt != nullptr) this->adopt(*adopt);
        schedule(h);
        return;
    }
    {
        std::lock_guard lock(remote_mutex_);
        remote_ready_.push_back({h, adopt});
    }
    notify_from_elsewhere();
}

void driver::notify_from_elsewhere() noexcept {
    if (remote_wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
    // The message rides on the sender's next enter, so only a sender inside a loop turn can
    // carry it: its loop goes on (or `run` submits what it left, see driver::submit). A driver
    // that exists on this thread but is not looping (a main thread that waits for a signal
    // elsewhere) would hold the SQE forever: then the eventfd it is.
    driver* sender = current_driver();
    if (sender != nullptr && sender != this && sender->in_turn_ && sender->on_driver_thread() &&
        !sender->shutting_down()) {
        try {
            io_uring_sqe& sqe = sender->get_sqe();
            prep_msg_ring(sqe, ring_.fd(), 0, remote_wake_op_.user_data());
            add_flags(sqe, sqe_flag::cqe_skip_success);
            // A failed message comes back to the sender with this same user_data.
            set_user_data(sqe, remote_wake_op_.user_data());
            return;
        } catch (...) {
            // The sender's ring is failing: fall back to the eventfd.
        }
    }
    wake();
}

void driver::remote_wake::on_complete(operation_base& self, const completion& c) noexcept {
    if (c.result < 0) static_cast<remote_wake&>(self).owner_->wake();
}

void driver::take_remote_work() {
    if (!wake_poll_armed_) arm_wake_poll();
    // Every poster sets the flag after queueing, so a clear flag means nothing new: the turn
    // takes no lock (a poster racing this load wakes the driver for its next turn).
    if (!remote_wake_pending_.load(std::memory_order_acquire)) return;
    // Cleared before looking, so that a post after the look sends a new wake-up.
    remote_wake_pending_.store(false, std::memory_order_seq_cst);
    {
        std::lock_guard lock(remote_mutex_);
        if (remote_cancels_.empty() && remote_ready_.empty()) return;
        taken_cancels_.swap(remote_cancels_);
        taken_ready_.swap(remote_ready_);
    }
    // Safe without the lock: an operation withdraws its request under the lock before it is
    // destroyed, and operations complete only on this thread, not during this loop.
    for (detail::operation_base* op : taken_cancels_)
        op->on_cancel_(*op);
    taken_cancels_.clear();
    for (const remote_entry& e : taken_ready_) {
        if (e.adopt != nullptr) adopt(*e.adopt);
        schedule(e.handle);
    }
    taken_ready_.clear();
}

void driver::wake() noexcept {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated: a wake-up is pending anyway.
    (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void driver::wake_poll::on_complete(operation_base& self, const completion& c) noexcept {
    // The poll carries no work: the loop turn it causes is the point. If the kernel ends it
    // (no MORE flag), the next turn arms it again.
    if (!c.more()) *static_cast<wake_poll&>(self).armed_ = false;
}

void driver::arm_wake_poll() {
    if (shutting_down_) return;
    io_uring_sqe& sqe = get_sqe();
    prep_poll_multishot(sqe, wake_fd_.get(), POLLIN);
    set_user_data(sqe, wake_op_.user_data());
    wake_poll_armed_ = true;
}

void driver::report_unhandled(std::exception_ptr e) noexcept {
    try {
        unhandled_.push_back(e);
    } catch (...) {
        detail::log_unhandled("tram::driver (out of memory to keep it)", e);
    }
}

namespace detail {

void log_unhandled(const char* where, std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(std::move(e));
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "%s: unhandled exception in a detached task: %s\n", where, ex.what());
    } catch (...) {
        std::fprintf(stderr, "%s: unhandled exception in a detached task (not a std::exception)\n",
                     where);
    }
}

} // namespace detail

void driver::adopt(detail::detached_link& link) noexcept {
    link.prev_ = nullptr;
    link.next_ = detached_;
    if (detached_ != nullptr) detached_->prev_ = &link;
    detached_ = &link;
}

void driver::release(detail::detached_link& link) noexcept {
    (link.prev_ ? link.prev_->next_ : detached_) = link.next_;
    if (link.next_ != nullptr) link.next_->prev_ = link.prev_;
    link.prev_ = link.next_ = nullptr;
}

bool driver::idle() const noexcept {
    return next_ready_.empty() && in_flight_ == 0 && waiting_head_ == nullptr &&
           ring_.sq().unpublished() == 0 && unhandled_.empty();
}

void driver::shutdown() {
    if (drained_) return;
    drain();
    drained_ = true;
}

void driver::drain() {
    shutting_down_ = true;
    current_scope scope(this);
    waiting_head_ = waiting_tail_ = nullptr;
    // Cancel everything still in flight, wake-up poll included, and wait for the last CQE of
    // each: until then the kernel may still write into memory that the frames below own.
    io_uring_sqe& sqe = get_sqe();
    prep_cancel_any(sqe);
    sqe.cancel_flags |= IORING_ASYNC_CANCEL_ALL;
    set_user_data(sqe, std::uint64_t{0});
    while (in_flight_ > 0 || wake_poll_armed_) {
        enter_kernel(true);
        reap();
    }
    // One more turn with nothing to wait for: submits nothing new, reaps stragglers.
    enter_kernel(false);
    reap();
    ready_.clear();
    next_ready_.clear();
    {
        // Detached tasks handed over but never started are ours to destroy, like the rest.
        std::lock_guard lock(remote_mutex_);
        for (const remote_entry& e : remote_ready_) {
            if (e.adopt != nullptr) adopt(*e.adopt);
        }
        remote_ready_.clear();
    }
    // Destroying a frame destroys the tasks it awaits, and their frames, down the chain.
    while (detached_ != nullptr) {
        detail::detached_link* link = detached_;
        release(*link);
        link->frame_.destroy();
    }
}

} // namespace tram
