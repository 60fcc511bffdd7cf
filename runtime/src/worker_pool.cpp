#include <tram/error.hpp>
#include <tram/worker_pool.hpp>

#include <cstdio>
#include <pthread.h>
#include <sched.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace tram {
namespace {

std::vector<unsigned> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<unsigned> cpus;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
        }
    }
    if (cpus.empty()) cpus.push_back(0);
    return cpus;
}

thread_local const worker_pool* current_pool = nullptr;
thread_local std::size_t current_index = 0;

// Pinning was asked for: a worker that cannot be pinned fails the pool's construction rather
// than running unpinned unnoticed (a cpuset changed under the process, a seccomp filter).
void pin_to(unsigned cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int r = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
    if (r != 0) throw_error(r, "worker_pool", "pinning a worker to CPU " + std::to_string(cpu));
}

} // namespace

worker_pool::worker_pool(const worker_pool_options& options) {
    const std::vector<unsigned> cpus = allowed_cpus();
    const unsigned count =
        options.threads != 0 ? options.threads : static_cast<unsigned>(cpus.size());
    workers_.reserve(count);
    loops_left_ = std::make_unique<std::latch>(count + 1);
    drained_ = std::make_unique<std::latch>(count);
    try {
        for (unsigned i = 0; i < count; ++i) {
            driver_options opts = options.driver;
            // Every ring after the first joins the first one's async worker pool.
            if (i > 0) opts.attach_wq_fd = workers_[0]->drv->fd();
            const unsigned cpu = options.pin ? cpus[i % cpus.size()] : ~0U;
            std::promise<driver*> ready;
            auto started = ready.get_future();
            auto& w = *workers_.emplace_back(std::make_unique<worker_state>());
            w.thread = std::thread(&worker_pool::run_worker, this, std::size_t{i}, cpu, opts,
                                   std::move(ready));
            w.drv = started.get(); // rethrows a failed setup
        }
    } catch (...) {
        // The failed worker counts itself down in both latches; the missing ones are added.
        const auto missing = static_cast<std::ptrdiff_t>(count - workers_.size());
        loops_left_->count_down(missing);
        drained_->count_down(missing);
        stop();
        throw;
    }
}

worker_pool::~worker_pool() { stop(); }

void worker_pool::throw_out_of_range(std::size_t index) const {
    throw std::out_of_range("tram::worker_pool: no worker " + std::to_string(index) +
                            " (the pool has " + std::to_string(workers_.size()) + ")");
}

void worker_pool::stop() noexcept {
    stopping_.store(true, std::memory_order_release);
    for (auto& w : workers_) {
        if (w->drv != nullptr) w->drv->wake();
    }
    loops_left_->count_down();
    for (auto& w : workers_)
        w->thread.join();
}

std::size_t worker_pool::current_worker() const noexcept {
    return current_pool == this ? current_index : workers_.size();
}

void worker_pool::run_worker(std::size_t index, unsigned cpu, driver_options options,
                             std::promise<driver*> ready) {
    std::unique_ptr<driver> d;
    try {
        if (cpu != ~0U) pin_to(cpu);
        // Made on its own thread: SINGLE_ISSUER binds a ring to the thread that sets it up,
        // and the registered ring fd lives in that thread's table.
        d = std::make_unique<driver>(options);
    } catch (...) {
        loops_left_->count_down();
        drained_->count_down();
        ready.set_exception(std::current_exception());
        return;
    }
    current_pool = this;
    current_index = index;
    ready.set_value(d.get());
    while (!stopping_.load(std::memory_order_acquire)) {
        try {
            d->run_turn(true);
        } catch (...) {
            // An exception escaping a detached task: the worker keeps serving the others.
            char where[32];
            std::snprintf(where, sizeof where, "tram worker %zu", index);
            detail::log_unhandled(where, std::current_exception());
        }
    }
    loops_left_->arrive_and_wait();
    d->shutdown();
    drained_->arrive_and_wait();
    current_pool = nullptr;
}

} // namespace tram
