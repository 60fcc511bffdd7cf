// Multishot operations: one SQE, many CQEs, consumed one by one with `co_await next()`.
#pragma once

#include <tram/completion.hpp>
#include <tram/driver.hpp>
#include <tram/task.hpp>

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>

namespace tram {
namespace detail {

/// The state of a multishot operation: the driver's operation_base (its address is the SQE's
/// user_data), the CQEs that arrived but were not consumed yet, and the coroutine waiting for
/// one. It knows nothing of what the operation is: the owner supplies `prepare` and the hooks.
///
/// It lives on the heap, apart from its owner, because the kernel decides when a multishot
/// operation ends: an owner destroyed while the operation is armed calls `orphan`, which asks
/// the kernel to cancel it and leaves this state to the driver. The state stays in flight
/// (holding its slot, so that the driver's shutdown waits for it too), hands every CQE still
/// coming to the `discard` hook (closing accepted sockets, recycling buffers) and frees itself
/// on the final CQE, the one without IORING_CQE_F_MORE. So no CQE ever touches freed memory.
///
/// Costs: one allocation per multishot object (not per arm, not per CQE). The queue is a ring
/// that doubles when a burst outgrows it, so steady state allocates nothing.
class multishot_core : public operation_base {
public:
    struct hooks {
        /// Prepares the SQE (its user_data is set afterwards).
        void (*prepare)(multishot_core&, io_uring_sqe&) noexcept;
        /// Releases what a CQE nobody will consume carries (an fd, a buffer).
        void (*discard)(multishot_core&, const completion&) noexcept;
        /// For a final CQE (no MORE flag), true when the operation ended for a passing reason
        /// (no provided buffer left): the CQE is dropped and the operation armed again, at once
        /// if a consumer waits, else on its next `next()` with re-arming.
        bool (*restart_on)(multishot_core&, const completion&) noexcept;
        /// Deletes the derived object.
        void (*destroy)(multishot_core*) noexcept;
    };

    explicit multishot_core(const hooks& h) noexcept
        : operation_base(&on_complete, &on_start, &on_cancel)
        , hooks_(&h) {}
    ~multishot_core();

    /// Arms the operation on `d` (precondition: not `pending()`); the SQE goes out with the
    /// driver's next turn, or once an in-flight slot frees. Clears an earlier cancel request.
    void start(driver& d);
    /// Asks the kernel to cancel the armed operation (on the driver's thread). Its final CQE
    /// still arrives through the queue; an operation waiting for a slot ends at once with a
    /// synthetic -ECANCELED CQE. Idempotent.
    void cancel() noexcept;
    /// Armed in the kernel or waiting for a slot: more CQEs will come.
    [[nodiscard]] bool pending() const noexcept { return state_ != state::idle; }
    [[nodiscard]] bool cancel_requested() const noexcept { return cancel_requested_; }
    [[nodiscard]] driver* owner_driver() const noexcept { return driver_; }
    /// How many times the operation was armed (`start`, re-arms included).
    [[nodiscard]] std::uint64_t arms() const noexcept { return arms_; }

    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
    [[nodiscard]] std::size_t queued() const noexcept { return count_; }
    /// The oldest queued CQE (precondition: !empty()).
    [[nodiscard]] completion pop() noexcept;

    /// The awaiter of `next()`: resumes with the oldest queued CQE, or nullopt once the
    /// operation has ended and nothing is queued. With `rearm`, an operation that ended (not
    /// cancelled) is armed again first. A stop request on the awaiting coroutine cancels the
    /// operation; the coroutine then receives what was queued, and finally its last CQE.
    class next_awaiter {
    public:
        next_awaiter(multishot_core& core, bool rearm) noexcept
            : core_(&core)
            , rearm_(rearm) {}
        next_awaiter(next_awaiter&& other) noexcept
            : core_(other.core_)
            , rearm_(other.rearm_) {
            assert(!other.suspended_ && "a suspended next() cannot move");
        }
        next_awaiter& operator=(next_awaiter&&) = delete;
        ~next_awaiter() {
            if (suspended_) core_->waiter_ = nullptr; // frame destroyed while suspended
            forget_stop();
        }

        [[nodiscard]] bool await_ready() const noexcept {
            return !core_->empty() || (!core_->pending() && !core_->should_rearm(rearm_));
        }
        template <typename Promise>
        bool await_suspend(std::coroutine_handle<Promise> waiter) {
            return suspend(waiter, stop_token_of(waiter));
        }
        std::optional<completion> await_resume() noexcept {
            suspended_ = false;
            forget_stop();
            if (core_->empty()) return std::nullopt;
            return core_->pop();
        }

    private:
        struct canceller {
            next_awaiter* self;
            void operator()() const noexcept { self->request_cancel(); }
        };

        bool suspend(std::coroutine_handle<> waiter, std::stop_token token);
        void request_cancel() noexcept;
        void forget_stop() noexcept;

        multishot_core* core_;
        std::optional<std::stop_callback<canceller>> stop_callback_;
        std::atomic<bool> remote_cancel_posted_{false};
        bool rearm_;
        bool suspended_ = false;
    };

    /// Called by the owner's destructor: see the class comment.
    void orphan() noexcept;

private:
    enum class state : unsigned char { idle, waiting_slot, armed };

    // An ended operation is armed again by `next()` when asked to, or after `restart_on`.
    [[nodiscard]] bool should_rearm(bool asked) const noexcept {
        return !cancel_requested_ && driver_ != nullptr && (asked || restart_when_asked_);
    }
    void submit();
    void send_cancel() noexcept;
    void push(const completion& c) noexcept;
    void wake() noexcept;
    void free_self() noexcept;
    static void on_complete(operation_base& base, const completion& c) noexcept;
    static void on_start(operation_base& base) noexcept;
    static void on_cancel(operation_base& base) noexcept;

    const hooks* hooks_;
    driver* driver_ = nullptr;
    std::coroutine_handle<> waiter_;
    std::unique_ptr<completion[]> queue_;
    std::size_t capacity_ = 0; // a power of two
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::uint64_t arms_ = 0;
    std::uint64_t cancel_turn_ = 0; // the loop turn of the last cancel request
    state state_ = state::idle;
    bool cancel_requested_ = false;
    bool orphaned_ = false;
    bool restart_when_asked_ = false;
};

template <typename Op>
concept multishot_op = requires(Op& op, io_uring_sqe& sqe) {
    { op.prepare(sqe) }
    noexcept;
};

/// The heap state for an `Op`.
template <multishot_op Op>
class multishot_state final : public multishot_core {
public:
    explicit multishot_state(Op op)
        : multishot_core(table)
        , op_(std::move(op)) {}
    [[nodiscard]] Op& op() noexcept { return op_; }

private:
    static void prepare(multishot_core& core, io_uring_sqe& sqe) noexcept {
        static_cast<multishot_state&>(core).op_.prepare(sqe);
    }
    static void discard(multishot_core& core, const completion& c) noexcept {
        if constexpr (requires(Op & op) { op.discard(c); }) {
            static_cast<multishot_state&>(core).op_.discard(c);
        }
    }
    static bool restart_on(multishot_core& core, const completion& c) noexcept {
        if constexpr (requires(Op & op) { op.restart_on(c); }) {
            return static_cast<multishot_state&>(core).op_.restart_on(c);
        } else {
            return false;
        }
    }
    static void destroy(multishot_core* core) noexcept {
        delete static_cast<multishot_state*>(core);
    }

    static constexpr hooks table{&prepare, &discard, &restart_on, &destroy};
    Op op_;
};

} // namespace detail

/// A long-lived multishot operation (multishot accept, recv, poll, timeout...), owned by this
/// object. `Op` is a value type with:
///   `void prepare(io_uring_sqe&) noexcept`  the multishot SQE (any memory it points the kernel
///                                           at should live inside `Op`, which stays put);
///   `void discard(const completion&) noexcept` (optional) frees what an unconsumed CQE
///                                           carries: CQEs queued when the owner goes away,
///                                           and those that arrive after;
///   `bool restart_on(const completion&) noexcept` (optional) see multishot_core::hooks.
///
/// `start()` arms it; every CQE is queued in order, none lost, and `co_await next()` takes
/// them one by one (std::optional<completion>, nullopt once the operation has ended, that is
/// after its final CQE without IORING_CQE_F_MORE was taken). `cancel()` or a stop request on
/// the coroutine awaiting `next()` cancels it in the kernel, and `next()` then delivers what
/// came before and finally the -ECANCELED CQE: cancellation waits for the kernel's answer.
///
/// Destroying the object while the operation is armed is safe (see multishot_core). The
/// object must outlive a `co_await next()` on it, and is used on its driver's thread.
template <detail::multishot_op Op>
class multishot {
public:
    explicit multishot(Op op)
        : state_(new detail::multishot_state<Op>(std::move(op))) {}
    multishot(multishot&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)) {}
    multishot& operator=(multishot&& other) noexcept {
        if (this != &other) {
            release();
            state_ = std::exchange(other.state_, nullptr);
        }
        return *this;
    }
    ~multishot() { release(); }

    /// Arms the operation on `d` (precondition: `!pending()`).
    void start(driver& d) { state_->start(d); }
    /// Arms it on the calling thread's driver.
    void start() {
        driver* d = current_driver();
        assert(d != nullptr && "a multishot operation needs a tram::driver");
        state_->start(*d);
    }
    /// Asks the kernel to cancel it; `next()` still delivers its final CQE.
    void cancel() noexcept { state_->cancel(); }
    /// More CQEs will come (armed, or waiting for an in-flight slot).
    [[nodiscard]] bool pending() const noexcept { return state_->pending(); }
    /// CQEs received and not yet taken.
    [[nodiscard]] std::size_t queued() const noexcept { return state_->queued(); }
    /// How many times it was armed.
    [[nodiscard]] std::uint64_t arms() const noexcept { return state_->arms(); }
    /// The next CQE without waiting, if one is queued.
    [[nodiscard]] std::optional<completion> try_next() noexcept {
        if (state_->empty()) return std::nullopt;
        return state_->pop();
    }
    /// `co_await next()`: the next CQE, waiting for it if needed; nullopt once ended.
    [[nodiscard]] detail::multishot_core::next_awaiter next() noexcept { return {*state_, false}; }

    [[nodiscard]] Op& op() noexcept { return state_->op(); }
    [[nodiscard]] detail::multishot_core& core() noexcept { return *state_; }

private:
    void release() noexcept {
        if (state_ != nullptr) std::exchange(state_, nullptr)->orphan();
    }
    detail::multishot_state<Op>* state_;
};

} // namespace tram
