// Thread per core: N worker threads, each with its own ring and driver.
#pragma once

#include <tram/driver.hpp>
#include <tram/spawn.hpp>
#include <tram/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

namespace tram {

/// How a worker pool is set up.
struct worker_pool_options {
    /// Worker threads; 0: as many as the CPUs this process may run on.
    unsigned threads = 0;
    /// Pin worker i to the i-th CPU this process may run on.
    bool pin = false;
    /// Each worker's driver (attach_wq_fd is set by the pool).
    driver_options driver{};
};

/// N worker threads, each running the loop of its own driver over its own ring; the rings
/// share one kernel async worker pool (IORING_SETUP_ATTACH_WQ). Nothing is shared on the hot
/// path: a task runs on one worker until it moves itself with `switch_to`. Handing work to
/// another worker costs the sender an IORING_OP_MSG_RING in its next io_uring_enter (or one
/// eventfd write from a thread outside the pool); an idle worker sleeps in io_uring_enter and
/// costs no CPU.
///
/// Destroying the pool stops every worker: each finishes its turn, then its driver cancels
/// what is in flight, waits for the CQEs and destroys its detached tasks (see `driver`).
class worker_pool {
public:
    explicit worker_pool(const worker_pool_options& options = {});
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;
    ~worker_pool();

    [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
    /// The driver of worker `index` (for `spawn_remote` and the like). Throws
    /// std::out_of_range for an index of no worker: a programming error, reported as one.
    [[nodiscard]] driver& worker(std::size_t index) const {
        if (index >= workers_.size()) throw_out_of_range(index);
        return *workers_[index]->drv;
    }
    /// The index of the calling worker thread, or size() outside the pool.
    [[nodiscard]] std::size_t current_worker() const noexcept;

    /// Starts `t` detached on worker `index` (from any thread).
    void spawn_on(std::size_t index, task<void> t) { spawn_remote(worker(index), std::move(t)); }

    /// `co_await pool.switch_to(i)`: the coroutine continues on worker `i` (std::out_of_range
    /// for no such worker).
    [[nodiscard]] auto switch_to(std::size_t index) const {
        struct awaiter {
            driver* target;
            bool await_ready() const noexcept { return target == current_driver(); }
            void await_suspend(std::coroutine_handle<> h) const { target->schedule_remote(h); }
            void await_resume() const noexcept {}
        };
        return awaiter{&worker(index)};
    }

    /// Runs `t` on worker `index` and blocks the calling thread (which must not be a worker)
    /// until it finishes; returns its value or rethrows its exception.
    template <typename T>
    T block_on(std::size_t index, task<T> t) {
        std::promise<T> result;
        auto done = result.get_future();
        spawn_on(index, forward_result(std::move(t), std::move(result)));
        return done.get();
    }

private:
    [[noreturn]] void throw_out_of_range(std::size_t index) const;

    struct worker_state {
        std::thread thread;
        driver* drv = nullptr;
    };

    template <typename T>
    static task<void> forward_result(task<T> t, std::promise<T> result) {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(t);
                result.set_value();
            } else {
                result.set_value(co_await std::move(t));
            }
        } catch (...) {
            result.set_exception(std::current_exception());
        }
    }

    void run_worker(std::size_t index, unsigned cpu, driver_options options,
                    std::promise<driver*> ready);
    void stop() noexcept;

    std::vector<std::unique_ptr<worker_state>> workers_;
    std::atomic<bool> stopping_{false};
    // Shutdown in phases, so that no driver goes away while another thread may still send to
    // it (a wake-up from the pool, a MSG_RING from another worker, the failure CQE of one):
    // every worker leaves its loop and the destroying thread has sent its last wake-up, then
    // every driver drains, then they are destroyed.
    std::unique_ptr<std::latch> loops_left_;
    std::unique_ptr<std::latch> drained_;
};

} // namespace tram
