// Threads for the few blocking calls that have no io_uring op (getaddrinfo, NSS lookups,
// libraries that only offer blocking APIs), their results delivered through the ring.
#pragma once

#include <tram/io_result.hpp>
#include <tram/operation.hpp>
#include <tram/task.hpp>
#include <tram/unique_fd.hpp>

#include <atomic>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace tram {

/// How a pool thread tells the ring that a call has finished.
enum class blocking_wake : unsigned char {
    /// futex where the kernel has IORING_OP_FUTEX_WAIT (6.7), else eventfd.
    automatic,
    /// The thread sets and wakes a futex word that the ring waits on: no descriptor per call.
    futex,
    /// The thread writes an eventfd that the ring reads: one descriptor per call, any kernel.
    eventfd,
};

namespace detail {

/// A call handed to a blocking_pool, shared by the pool thread that runs it and the
/// coroutine that waits for it (which may give up first: see `abandon`).
class blocking_job {
public:
    /// `wake` is futex or eventfd (not automatic).
    explicit blocking_job(blocking_wake wake);
    blocking_job(const blocking_job&) = delete;
    blocking_job& operator=(const blocking_job&) = delete;
    virtual ~blocking_job() = default;

    /// On a pool thread: runs the call unless its waiter gave up, then wakes the waiter.
    void execute() noexcept;
    /// The waiter no longer wants the result (cancelled): a call not yet started is skipped.
    void abandon() noexcept { abandoned_.store(true, std::memory_order_relaxed); }
    /// True once the call has run; its result is then visible to the caller (acquire).
    [[nodiscard]] bool finished() const noexcept {
        return std::atomic_ref(done_).load(std::memory_order_acquire) != 0;
    }
    /// Prepares the SQE that completes when the call has finished: an IORING_OP_FUTEX_WAIT
    /// (6.7) on the job's futex word, or a read of its eventfd on older kernels.
    void prepare_wait(io_uring_sqe& sqe) noexcept;

protected:
    virtual void invoke() noexcept = 0;

private:
    // The futex word the ring waits on: 0 while the call runs, 1 after. Plain memory that is
    // read through atomic_ref, because the kernel needs its address.
    alignas(std::atomic_ref<std::uint32_t>::required_alignment) std::uint32_t done_ = 0;
    std::atomic<bool> abandoned_{false};
    unique_fd event_;           // only without IORING_OP_FUTEX_WAIT
    std::uint64_t counter_ = 0; // where the ring's read of event_ lands
};

template <typename F>
class blocking_call final : public blocking_job {
public:
    using result_type = std::invoke_result_t<F&>;

    blocking_call(F f, blocking_wake wake)
        : blocking_job(wake)
        , f_(std::move(f)) {}

    /// The call's value, or its exception rethrown. Only after `finished()`.
    result_type take() {
        if (error_) std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<result_type>) return std::move(*value_);
    }

private:
    void invoke() noexcept override {
        try {
            if constexpr (std::is_void_v<result_type>) {
                f_();
            } else {
                value_.emplace(f_());
            }
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    struct nothing {};
    F f_;
    [[no_unique_address]] std::conditional_t<std::is_void_v<result_type>, nothing,
                                             std::optional<result_type>>
        value_;
    std::exception_ptr error_;
};

/// The ring operation that waits for a blocking_job.
class blocking_wait final : public io_awaiter<blocking_wait> {
public:
    explicit blocking_wait(blocking_job& job) noexcept
        : job_(&job) {}
    void prepare(io_uring_sqe& sqe) noexcept { job_->prepare_wait(sqe); }

private:
    blocking_job* job_;
};

/// Ends a wait that did not see the job finish (ECANCELED) with tram::error.
[[noreturn]] void throw_blocking_error(int errnum, std::string_view what);

} // namespace detail

/// A fixed set of threads that run blocking calls for coroutines.
///
/// `co_await pool.run(f)` queues `f` and suspends the coroutine on an io_uring operation that
/// completes when a pool thread has run it: an IORING_OP_FUTEX_WAIT (6.7) on a word of the
/// call's state, which the thread sets and wakes (one futex(2) call), or, on older kernels, a
/// read of an eventfd the thread writes. So the result comes back to the worker whose ring
/// the coroutine waits on, the loop sleeps in io_uring_enter meanwhile, the wait counts as an
/// operation in flight (`tram::run` and shutdown see it), and a stop request cancels it like
/// any operation.
///
/// A stop request ends the wait at once with tram::error ECANCELED: a call that has not
/// started yet is skipped, one that runs finishes on its own and its result is dropped (the
/// call's state is shared, so nothing it writes is freed under it). Each call costs one heap
/// allocation and a thread hop (tens of microseconds): for setup paths, not per I/O.
///
/// Destroying the pool runs the calls still queued (skipping abandoned ones), then joins its
/// threads.
class blocking_pool {
public:
    /// Starts `threads` threads (at least one).
    explicit blocking_pool(unsigned threads = 4, blocking_wake wake = blocking_wake::automatic);
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;
    ~blocking_pool();

    [[nodiscard]] std::size_t size() const noexcept { return threads_.size(); }

    /// Runs `f()` on a pool thread and gives its value (or rethrows its exception) to the
    /// awaiting coroutine, on that coroutine's driver. Cancellation: see the class comment.
    template <typename F>
    requires std::invocable<F&>
    [[nodiscard]] task<std::invoke_result_t<F&>> run(F f) {
        // Not a coroutine itself: GCC 12 mis-destroys a by-value lambda parameter that owns
        // memory (a captured std::string) when it lives in a coroutine frame.
        return wait_for(std::make_shared<detail::blocking_call<F>>(std::move(f), wake_));
    }

private:
    template <typename F>
    task<std::invoke_result_t<F&>> wait_for(std::shared_ptr<detail::blocking_call<F>> call) {
        post(call);
        // Waited for at least once, even when the call is already done, so that a stop
        // requested before the await ends it with ECANCELED like any other operation.
        do {
            // 0: woken; EAGAIN: the word was already set when the kernel looked.
            const io_result r = co_await detail::blocking_wait(*call);
            if (!r.ok() && r.error() != EAGAIN) {
                call->abandon();
                detail::throw_blocking_error(r.error(), "blocking call");
            }
        } while (!call->finished());
        co_return call->take();
    }
    void post(std::shared_ptr<detail::blocking_job> job);
    void work() noexcept;

    std::mutex mutex_;
    std::condition_variable wanted_;
    std::deque<std::shared_ptr<detail::blocking_job>> queue_;
    bool stopping_ = false;
    blocking_wake wake_;
    std::vector<std::thread> threads_;
};

/// The process's pool for blocking calls (tram::resolve uses it): four threads, started on
/// first use and never joined, since at exit one may still be inside a call that blocks.
[[nodiscard]] blocking_pool& default_blocking_pool();

} // namespace tram
