// The proactor: one ring, the coroutines waiting on it, and the loop that drives both.
#pragma once

#include <tram/completion.hpp>
#include <tram/ring.hpp>
#include <tram/unique_fd.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tram {

class driver;

/// How a driver sets up its ring.
struct driver_options {
    /// SQ entries: how many SQEs one loop turn can prepare before it must submit early.
    unsigned entries = 1024;
    /// CQ entries (0: four times `entries`).
    unsigned cq_entries = 0;
    /// A cap on operations in flight (0: none). Awaits beyond it wait for a slot, in FIFO
    /// order. Beware: an operation that may wait indefinitely (a recv on an idle connection)
    /// holds its slot all along, so a cap below the number of such operations can starve the
    /// one that would end them. Without a cap, a CQ too small for a burst of completions
    /// overflows into the kernel's list (IORING_FEAT_NODROP) and the loop flushes it: nothing
    /// is lost.
    unsigned max_in_flight = 0;
    /// Let a kernel thread poll the SQ: no system call at all while the poller is awake.
    bool sqpoll = false;
    std::chrono::milliseconds sqpoll_idle{50};
    /// Keep the ring fd pollable for embedding in another event loop (`driver::fd`); this
    /// rules out DEFER_TASKRUN, whose completions appear only when the ring's owner enters.
    bool pollable = false;
    /// Share the async worker pool of another ring.
    std::optional<int> attach_wq_fd{};
    /// Completion batching, for servers with many connections: when the loop must wait and
    /// at least 8 operations are in flight, it waits for up to `batch_completions` of them (at
    /// most a quarter of those in flight), but returns as soon as one is there once
    /// `batch_window` has passed. Fewer system calls under load, for at most `batch_window` of
    /// added latency; a lone connection is never held back. Needs IORING_FEAT_MIN_TIMEOUT
    /// (Linux 6.12); ignored without it. 0 (the default): wait for one completion.
    unsigned batch_completions = 0;
    std::chrono::microseconds batch_window{50};
};

/// Counters of what the loop did, for users, tests and benchmarks.
struct driver_stats {
    std::uint64_t turns = 0;          ///< loop turns
    std::uint64_t enters = 0;         ///< io_uring_enter calls
    std::uint64_t waits = 0;          ///< io_uring_enter calls that waited for a completion
    std::uint64_t sqes_submitted = 0; ///< SQEs the kernel consumed
    std::uint64_t cqes_reaped = 0;    ///< CQEs consumed
};

namespace detail {

/// An operation in flight, as the driver sees it. Each lives in its awaiter (hence in the
/// awaiting coroutine's frame), and its address is the user_data of its SQEs.
///
/// user_data scheme: the address of the operation_base, which is at least 8-byte aligned,
/// with a tag in the low 3 bits (`user_data_tag`); 0 marks SQEs whose CQE nobody waits for
/// (cancel requests). A multishot operation receives every CQE of its SQE and is done only
/// with the one that lacks IORING_CQE_F_MORE.
class operation_base {
public:
    using complete_fn = void (*)(operation_base&, const completion&) noexcept;
    using action_fn = void (*)(operation_base&) noexcept;

    /// `on_complete` receives every CQE with this operation's user_data; `on_start` submits
    /// an operation that had to wait for an in-flight slot; `on_cancel` carries out a cancel
    /// request (on the driver's thread).
    operation_base(complete_fn on_complete, action_fn on_start, action_fn on_cancel) noexcept
        : on_complete_(on_complete)
        , on_start_(on_start)
        , on_cancel_(on_cancel) {}
    operation_base(const operation_base&) = delete;
    operation_base& operator=(const operation_base&) = delete;

    [[nodiscard]] std::uint64_t user_data(unsigned tag = 0) const noexcept {
        return reinterpret_cast<std::uintptr_t>(this) | tag;
    }

private:
    friend class tram::driver;
    complete_fn on_complete_;
    action_fn on_start_;
    action_fn on_cancel_;
    operation_base* next_waiting_ = nullptr; // in the driver's queue for an in-flight slot
};

/// A detached coroutine known to its driver, which destroys it at shutdown if it is still
/// suspended then. Intrusive, so that adopting and releasing cost no allocation.
class detached_link {
public:
    explicit detached_link(std::coroutine_handle<> frame) noexcept
        : frame_(frame) {}
    detached_link(const detached_link&) = delete;
    detached_link& operator=(const detached_link&) = delete;

private:
    friend class tram::driver;
    std::coroutine_handle<> frame_;
    detached_link* prev_ = nullptr;
    detached_link* next_ = nullptr;
};

inline constexpr std::uint64_t user_data_tag_mask = 7;
/// The CQE of the IORING_OP_LINK_TIMEOUT linked to an operation.
inline constexpr unsigned link_timeout_tag = 1;

/// Writes an exception that escaped a detached task, and that nobody else will see, to
/// stderr with `where` in front, so that it is never silently lost.
void log_unhandled(const char* where, std::exception_ptr e) noexcept;

} // namespace detail

/// The driver of the calling thread: the one whose loop is running here (set while a loop
/// turn runs), else the last one constructed on this thread. Null when there is none.
[[nodiscard]] driver* current_driver() noexcept;

/// A single-threaded proactor over one io_uring.
///
/// A loop turn makes at most one io_uring_enter, which submits every SQE prepared since the
/// last one and, only when no coroutine is ready and no completion is waiting, waits for one;
/// then it reaps every CQE (handing the CQ head back once), and runs the coroutines that are
/// ready, those the CQEs completed included. What they prepare is submitted by the next
/// turn's enter. With completions already waiting and nothing to submit, a turn makes no
/// system call at all.
///
/// Completions are never lost. The CQ is four times the SQ by default, so a loop turn
/// can reap that many completions straight from the ring. A burst beyond it (more operations
/// completing between two turns than the CQ holds) goes to the kernel's overflow list
/// (IORING_FEAT_NODROP); the loop sees IORING_SQ_CQ_OVERFLOW and enters with GETEVENTS to move
/// it over as it reaps. `driver_options::max_in_flight` can bound the operations in flight, so
/// that a CQ of twice that size can never overflow (an operation and its link timeout post two
/// CQEs), at the price described there.
///
/// Threads: a driver is used from one thread. Only `post_cancel` (from stop callbacks),
/// `schedule_remote` and `wake` may be called from others.
class driver {
public:
    explicit driver(const driver_options& options = {});
    driver(const driver&) = delete;
    driver& operator=(const driver&) = delete;
    /// Cancels every operation in flight and waits for their last CQEs before the ring goes
    /// away; then destroys the detached tasks that are still suspended, without resuming them.
    ~driver();
    /// What the destructor does, earlier: after it the driver runs nothing, but its ring and
    /// descriptors stay valid until destruction (other threads may still be sending to it).
    void shutdown();

    /// One loop turn. With `may_block`, waits in the kernel when nothing is ready. Rethrows an
    /// exception that escaped a detached task (see `spawn`).
    void run_turn(bool may_block);
    /// Submits the SQEs prepared since the last enter, without waiting; no system call when
    /// there are none. `run` calls it before it returns, so that what its task prepared last
    /// (a cross-thread wake-up, a detached close) does not wait for a turn that may not come.
    void submit();
    /// Embedding: one non-blocking turn (submit, reap, run what is ready).
    void run_once() { run_turn(false); }
    /// Embedding: a descriptor that polls readable while completions are waiting (the ring
    /// fd). Useful only with `driver_options::pollable`; see the README for the protocol.
    [[nodiscard]] int fd() const noexcept { return ring_.fd(); }
    /// Embedding: true when a coroutine is ready to run or SQEs wait to be submitted, so the
    /// host loop should call `run_once` again soon rather than sleep on `fd()`. Also true
    /// before the first turn: that turn arms the poll through which other threads wake it.
    [[nodiscard]] bool has_pending_work() const noexcept;

    /// Queues `h` to be resumed on a later turn (in FIFO order).
    void schedule(std::coroutine_handle<> h) { next_ready_.push_back(h); }
    /// From any thread: queues `h` to be resumed on this driver's thread, and wakes the driver
    /// if it may be asleep. From inside another driver's loop turn the wake-up is an
    /// IORING_OP_MSG_RING that rides along with that driver's next io_uring_enter (no system
    /// call of its own); from anywhere else (a thread without a driver, or whose driver is not
    /// looping) it is one eventfd write. With `adopt`, `h` is a detached
    /// task's frame (`spawn_on`) that this driver takes ownership of when it arrives.
    void schedule_remote(std::coroutine_handle<> h, detail::detached_link* adopt = nullptr);

    /// An SQE to prepare now, submitted by the current turn. When the SQ is full, submits what
    /// is there first (one extra io_uring_enter).
    [[nodiscard]] io_uring_sqe& get_sqe();
    /// `count` consecutive SQEs (for linked chains), submitted together.
    [[nodiscard]] sqe_range get_sqes(unsigned count);

    /// Takes an in-flight slot for `op`, or queues it: `op`'s start function then runs once a
    /// slot frees. Returns true when it may start now.
    [[nodiscard]] bool acquire_slot(detail::operation_base& op) noexcept;
    /// Returns the slot of an operation whose last CQE has arrived.
    void release_slot() noexcept;
    /// Drops `op` from the queue of operations waiting for a slot; true if it was there.
    bool forget_waiting(detail::operation_base& op) noexcept;

    /// Asks the kernel to cancel the operation with `user_data` (its CQE then arrives with
    /// -ECANCELED, unless it completed first). Must be called on the driver's thread.
    void cancel(std::uint64_t user_data);
    /// From any thread: runs `op`'s cancel function on the driver's thread, at the start of
    /// its next turn. `op` must call `withdraw_cancel` before it is destroyed.
    void post_cancel(detail::operation_base& op);
    /// Removes a request of `post_cancel` that has not been carried out yet.
    void withdraw_cancel(detail::operation_base& op) noexcept;
    /// Closes `fd` through the ring, without waiting for the result: for destructors, which
    /// must not block the loop. Errors of such a close are not reported (use an awaited close
    /// for that).
    void close_detached(int fd);
    /// Wakes the driver from another thread (one eventfd write).
    void wake() noexcept;
    /// True on the thread that owns this driver.
    [[nodiscard]] bool on_driver_thread() const noexcept {
        return std::this_thread::get_id() == owner_;
    }

    /// Records an exception that escaped a detached task. The loop rethrows them one per
    /// turn, in the order they escaped, from `run_turn`/`run_once`.
    void report_unhandled(std::exception_ptr e) noexcept;
    /// Registers a detached task's frame, destroyed at shutdown if still suspended.
    void adopt(detail::detached_link& link) noexcept;
    void release(detail::detached_link& link) noexcept;

    /// True when nothing can make progress: no coroutine ready, no operation in flight or
    /// waiting for a slot, no SQE to submit. A task still suspended then waits forever.
    [[nodiscard]] bool idle() const noexcept;

    [[nodiscard]] const driver_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] unsigned in_flight() const noexcept { return in_flight_; }
    [[nodiscard]] unsigned in_flight_limit() const noexcept { return in_flight_limit_; }
    [[nodiscard]] tram::ring& ring() noexcept { return ring_; }
    [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_; }

private:
    static tram::ring make_ring(const driver_options& options);
    void run_ready();
    void enter_kernel(bool may_wait);
    [[nodiscard]] unsigned batch_size() const noexcept;
    void reap();
    void dispatch(const completion& c) noexcept;
    void take_remote_work();
    void notify_from_elsewhere() noexcept;
    void arm_wake_poll();
    void drain();

    tram::ring ring_;
    std::thread::id owner_;
    driver_stats stats_;
    std::vector<std::coroutine_handle<>> ready_;
    std::vector<std::coroutine_handle<>> next_ready_;
    unsigned in_flight_ = 0;
    unsigned in_flight_limit_ = 0;
    unsigned batch_completions_ = 0; // 0: wait for one completion (see driver_options)
    std::uint32_t batch_window_usec_ = 0;
    detail::operation_base* waiting_head_ = nullptr; // FIFO of ops waiting for a slot
    detail::operation_base* waiting_tail_ = nullptr;
    detail::detached_link* detached_ = nullptr;
    std::vector<std::exception_ptr> unhandled_; // rare: allocation is fine here
    bool shutting_down_ = false;
    bool in_turn_ = false; // inside run_turn: SQEs prepared now will be submitted
    bool drained_ = false;
    driver* previous_current_ = nullptr;

    // Cross-thread wake-ups: an eventfd watched by a multishot poll, armed once. Nothing is
    // read from it: a multishot poll fires on every write, so waking costs the waker one
    // write(2) and the driver nothing.
    class wake_poll final : public detail::operation_base {
    public:
        explicit wake_poll(bool& armed) noexcept
            : operation_base(&on_complete, nullptr, nullptr)
            , armed_(&armed) {}

    private:
        static void on_complete(operation_base& self, const completion& c) noexcept;
        bool* armed_;
    };
    unique_fd wake_fd_;
    bool wake_poll_armed_ = false;
    wake_poll wake_op_{wake_poll_armed_};
    std::mutex remote_mutex_;
    std::vector<detail::operation_base*> remote_cancels_;
    std::vector<detail::operation_base*> taken_cancels_;

    // Work handed over by other threads, taken at the start of every turn.
    struct remote_entry {
        std::coroutine_handle<> handle;
        detail::detached_link* adopt;
    };
    std::vector<remote_entry> remote_ready_;
    std::vector<remote_entry> taken_ready_;
    // Set by the first poster after the driver last looked, so that a burst of posts costs one
    // wake-up; read by every turn, which takes the lock only when it is set.
    std::atomic<bool> remote_wake_pending_{false};

    // The target of wake-ups sent with IORING_OP_MSG_RING. Its CQEs arrive here (result 0), and
    // at the sender when the message failed (result < 0, e.g. our CQ was full): the sender
    // then falls back to the eventfd.
    class remote_wake final : public detail::operation_base {
    public:
        explicit remote_wake(driver& owner) noexcept
            : operation_base(&on_complete, nullptr, nullptr)
            , owner_(&owner) {}

    private:
        static void on_complete(operation_base& self, const completion& c) noexcept;
        driver* owner_;
    };
    remote_wake remote_wake_op_{*this};
};

} // namespace tram
