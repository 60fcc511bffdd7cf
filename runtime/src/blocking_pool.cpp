// The threads of blocking_pool and the ring side of waiting for them (see blocking_pool.hpp).
#include <tram/blocking_pool.hpp>

#include <tram/error.hpp>
#include <tram/file.hpp>
#include <tram/sqe.hpp>
#include <tram/uapi.hpp>

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace tram {
namespace {

bool ring_has_futex_wait() noexcept {
    static const bool supported = detail::kernel_supports(opcode::futex_wait);
    return supported;
}

} // namespace

namespace detail {

blocking_job::blocking_job(blocking_wake wake) {
    if (wake == blocking_wake::futex) return;
    const int fd = ::eventfd(0, EFD_CLOEXEC);
    if (fd < 0) throw_error(errno, "blocking call", "creating its eventfd");
    event_.reset(fd);
}

void blocking_job::execute() noexcept {
    if (!abandoned_.load(std::memory_order_relaxed)) invoke();
    std::atomic_ref(done_).store(1, std::memory_order_release);
    if (event_) {
        const std::uint64_t one = 1;
        (void)!::write(event_.get(), &one, sizeof(one));
    } else {
        // The ring's FUTEX_WAIT checks the word under the futex bucket lock, so a wake that
        // comes before the wait is queued is not lost: the wait then ends with EAGAIN.
        ::syscall(SYS_futex, &done_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
}

void blocking_job::prepare_wait(io_uring_sqe& sqe) noexcept {
    if (event_) {
        prep_read(sqe, event_.get(),
                  std::span(reinterpret_cast<std::byte*>(&counter_), sizeof(counter_)),
                  current_position);
    } else {
        prep_futex_wait(sqe, &done_, 0, uapi::futex2_size_u32 | uapi::futex2_private);
    }
}

void throw_blocking_error(int errnum, std::string_view what) {
    throw_error(errnum, std::string(what));
}

} // namespace detail

blocking_pool::blocking_pool(unsigned threads, blocking_wake wake)
    : wake_(wake != blocking_wake::automatic ? wake
            : ring_has_futex_wait()          ? blocking_wake::futex
                                             : blocking_wake::eventfd) {
    threads_.reserve(std::max(threads, 1U));
    for (unsigned i = 0; i < std::max(threads, 1U); ++i)
        threads_.emplace_back([this] { work(); });
}

blocking_pool::~blocking_pool() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wanted_.notify_all();
    for (std::thread& t : threads_)
        t.join();
}

void blocking_pool::post(std::shared_ptr<detail::blocking_job> job) {
    {
        const std::lock_guard lock(mutex_);
        queue_.push_back(std::move(job));
    }
    wanted_.notify_one();
}

void blocking_pool::work() noexcept {
    for (;;) {
        std::shared_ptr<detail::blocking_job> job;
        {
            std::unique_lock lock(mutex_);
            wanted_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return; // stopping, and every queued call has run
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        job->execute();
    }
}

blocking_pool& default_blocking_pool() {
    // Never destroyed: joining at exit could hang on a thread stuck in a slow lookup.
    static auto* const pool = new blocking_pool(4);
    return *pool;
}

} // namespace tram
