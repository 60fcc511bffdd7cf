#include <tram/error.hpp>
#include <tram/ring.hpp>

#include "syscall.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <string>

namespace tram {
namespace {

// Its address identifies the calling thread. Registered ring fds live in a per-thread table
// (the kernel's io_uring_task), so an index is only meaningful to the thread that registered
// it: in another thread it names nothing (EINVAL, EBADF) or, worse, another ring.
// initial-exec: libtram is built position-independent, where a thread_local is otherwise
// reached through __tls_get_addr, which makes every ring::enter save and restore six registers
// around it; initial-exec is one %fs-relative load (a byte of static TLS, also when dlopen'ed).
[[gnu::tls_model("initial-exec")]] thread_local const char this_thread_marker = 0;

std::string setup_failure_detail(int err, const ring_options& options, setup_flags flags) {
    switch (err) {
    case ENOSYS:
        return "this kernel has no io_uring (built without CONFIG_IO_URING)";
    case EPERM:
        return "io_uring is disabled by the kernel.io_uring_disabled sysctl, or blocked by a "
               "seccomp or container sandbox";
    case ENOMEM: {
        rlimit lim{};
        ::getrlimit(RLIMIT_MEMLOCK, &lim);
        // 5.12 moved ring memory to the memory cgroup; the region rework of 6.1x put it back
        // under RLIMIT_MEMLOCK (on 6.18 a 64 KiB limit fits 256 entries, not 512).
        return "not enough memory for the rings (RLIMIT_MEMLOCK is " +
               (lim.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                              : std::to_string(lim.rlim_cur / 1024) + " KiB") +
               ", which kernels before 5.12 and recent ones such as 6.18 charge ring memory to "
               "unless the process has CAP_IPC_LOCK: ask for fewer entries, or raise it), or "
               "the kernel is out of memory";
    }
    case EINVAL:
        return "invalid parameters (entries " + std::to_string(options.entries) + ", flags {" +
               to_string(flags) +
               "}): a flag this kernel does not know, a combination it rejects, or too many "
               "entries (at most 32768 without clamp)";
    case EMFILE:
    case ENFILE:
        return "no file descriptor left for the ring";
    default:
        return {};
    }
}

io_uring_params make_params(const ring_options& options, setup_flags& flags) {
    io_uring_params p{};
    if (options.cq_entries) {
        flags |= setup_flag::cqsize;
        p.cq_entries = *options.cq_entries;
    }
    if (options.sq_thread_cpu) {
        flags |= setup_flag::sq_aff;
        p.sq_thread_cpu = *options.sq_thread_cpu;
    }
    if (options.sq_thread_idle)
        p.sq_thread_idle = static_cast<unsigned>(options.sq_thread_idle->count());
    if (options.attach_wq_fd) {
        flags |= setup_flag::attach_wq;
        p.wq_fd = static_cast<unsigned>(*options.attach_wq_fd);
    }
    p.flags = flags.bits();
    return p;
}

template <typename T>
T* at_offset(std::byte* base, unsigned offset) noexcept {
    return reinterpret_cast<T*>(base + offset);
}

} // namespace

ring::ring(const ring_options& options)
    : flags_(options.flags) {
    io_uring_params p = make_params(options, flags_);
    const int fd = sys::io_uring_setup(options.entries, &p);
    if (fd < 0) throw_error(-fd, "io_uring_setup", setup_failure_detail(-fd, options, flags_));
    fd_.reset(fd);
    enter_fd_ = fd;
    features_ = tram::features::from_bits(p.features);
    map_rings(p);
    if (options.register_ring_fd) register_ring_fd();
}

ring::~ring() {
    // The registered-ring table holds its own reference to the ring: without this, the ring
    // (its memory, SQPOLL thread and registered resources) would live on until the thread
    // exits, and its slot, one of 16, would stay taken.
    if (const auto index = registered_index()) {
        io_uring_rsrc_update update{};
        update.offset = *index;
        (void)sys::io_uring_register(fd_.get(), IORING_UNREGISTER_RING_FDS, &update, 1);
    }
}

void ring::map_rings(const io_uring_params& p) {
    const bool sqe128 = flags_.contains(setup_flag::sqe128);
    const bool cqe32 = flags_.contains(setup_flag::cqe32);
    const bool no_sqarray = flags_.contains(setup_flag::no_sqarray);
    const std::size_t cqe_size = sizeof(io_uring_cqe) << (cqe32 ? 1 : 0);
    const std::size_t sqe_size = sizeof(io_uring_sqe) << (sqe128 ? 1 : 0);

    std::size_t sq_size = no_sqarray ? 0 : p.sq_off.array + p.sq_entries * sizeof(std::uint32_t);
    std::size_t cq_size = p.cq_off.cqes + p.cq_entries * cqe_size;
    if (features_.contains(feature::single_mmap) || no_sqarray) {
        // One mapping holds both rings (5.4+); without an SQ array the kernel always lays
        // them out this way.
        sq_size = cq_size = std::max(sq_size, cq_size);
        sq_ring_ = mapping::map_shared(fd_.get(), sq_size, IORING_OFF_SQ_RING, "the SQ/CQ rings");
    } else {
        sq_ring_ = mapping::map_shared(fd_.get(), sq_size, IORING_OFF_SQ_RING, "the SQ ring");
        cq_ring_ = mapping::map_shared(fd_.get(), cq_size, IORING_OFF_CQ_RING, "the CQ ring");
    }
    sqes_ =
        mapping::map_shared(fd_.get(), p.sq_entries * sqe_size, IORING_OFF_SQES, "the SQE array");

    std::byte* sq_base = sq_ring_.data();
    sq_.khead_ = at_offset<std::uint32_t>(sq_base, p.sq_off.head);
    sq_.ktail_ = at_offset<std::uint32_t>(sq_base, p.sq_off.tail);
    sq_.kflags_ = at_offset<std::uint32_t>(sq_base, p.sq_off.flags);
    sq_.kdropped_ = at_offset<std::uint32_t>(sq_base, p.sq_off.dropped);
    sq_.mask_ = *at_offset<std::uint32_t>(sq_base, p.sq_off.ring_mask);
    sq_.entries_ = *at_offset<std::uint32_t>(sq_base, p.sq_off.ring_entries);
    sq_.sqes_ = reinterpret_cast<io_uring_sqe*>(sqes_.data());
    sq_.sqe_shift_ = sqe128 ? 1 : 0;
    sq_.sqe_tail_ = sq_.published_tail_ = *sq_.ktail_;
    if (!no_sqarray) {
        // tram hands out SQEs in ring order, so the indirection array is the identity and is
        // filled once here rather than on every submit.
        auto* array = at_offset<std::uint32_t>(sq_base, p.sq_off.array);
        for (unsigned i = 0; i < sq_.entries_; ++i)
            array[i] = i;
    }

    std::byte* cq_base = cq_ring_ ? cq_ring_.data() : sq_base;
    cq_.khead_ = at_offset<std::uint32_t>(cq_base, p.cq_off.head);
    cq_.ktail_ = at_offset<std::uint32_t>(cq_base, p.cq_off.tail);
    cq_.koverflow_ = at_offset<std::uint32_t>(cq_base, p.cq_off.overflow);
    cq_.kflags_ = p.cq_off.flags ? at_offset<std::uint32_t>(cq_base, p.cq_off.flags) : nullptr;
    cq_.cqes_ = at_offset<io_uring_cqe>(cq_base, p.cq_off.cqes);
    cq_.mask_ = *at_offset<std::uint32_t>(cq_base, p.cq_off.ring_mask);
    cq_.entries_ = *at_offset<std::uint32_t>(cq_base, p.cq_off.ring_entries);
    cq_.cqe_shift_ = cqe32 ? 1 : 0;
}

void ring::register_ring_fd() noexcept {
    // offset -1: let the kernel pick a free slot in this task's registered-ring table.
    io_uring_rsrc_update update{};
    update.offset = ~0U;
    update.data = static_cast<std::uint64_t>(fd_.get());
    // Kernels before 5.18 reject the opcode: the ring then keeps using its plain fd.
    if (sys::io_uring_register(fd_.get(), IORING_REGISTER_RING_FDS, &update, 1) == 1) {
        enter_fd_ = static_cast<int>(update.offset);
        enter_flags_ = IORING_ENTER_REGISTERED_RING;
        registered_by_ = &this_thread_marker;
    }
}

std::optional<unsigned> ring::registered_index() const noexcept {
    if ((enter_flags_ & IORING_ENTER_REGISTERED_RING) && registered_by_ == &this_thread_marker) {
        return static_cast<unsigned>(enter_fd_);
    }
    return std::nullopt;
}

int ring::enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
                std::size_t arg_size) noexcept {
    if (registered_by_ == &this_thread_marker) [[likely]] {
        return sys::io_uring_enter(enter_fd_, to_submit, min_complete, flags | enter_flags_, arg,
                                   arg_size);
    }
    return sys::io_uring_enter(fd_.get(), to_submit, min_complete, flags, arg, arg_size);
}

namespace {

struct enter_plan {
    bool needed;
    unsigned flags;
};

// Decides whether submitting `to_submit` SQEs and waiting for `want` completions needs a
// system call at all, and with which flags.
enter_plan plan_enter(const submission_queue& sq, setup_flags setup, unsigned to_submit,
                      unsigned want) noexcept {
    enter_plan plan{false, 0};
    if (want > 0 || sq.cq_overflow() || sq.taskrun()) {
        plan = {true, IORING_ENTER_GETEVENTS};
    }
    if (setup.contains(setup_flag::sqpoll)) {
        // The poller consumes the SQ by itself; the kernel needs to hear from us only when it
        // went to sleep.
        if (to_submit > 0 && sq.need_wakeup()) plan = {true, plan.flags | IORING_ENTER_SQ_WAKEUP};
    } else if (to_submit > 0) {
        plan.needed = true;
    }
    return plan;
}

} // namespace

int ring::submit() noexcept { return submit_and_wait(0); }

int ring::submit_and_wait(unsigned want) noexcept {
    const unsigned to_submit = sq_.flush();
    const enter_plan plan = plan_enter(sq_, flags_, to_submit, want);
    if (!plan.needed) return static_cast<int>(to_submit);
    return enter(to_submit, want, plan.flags);
}

namespace {

__kernel_timespec to_timespec(std::chrono::nanoseconds d) noexcept {
    const auto ns = std::max(d.count(), std::chrono::nanoseconds::rep{0});
    return {ns / 1'000'000'000, ns % 1'000'000'000};
}

} // namespace

int ring::submit_and_wait(unsigned want, std::chrono::nanoseconds timeout) noexcept {
    if (!features_.contains(feature::ext_arg)) return -EOPNOTSUPP;
    const __kernel_timespec ts = to_timespec(timeout);
    uapi::getevents_arg arg{};
    arg.ts = reinterpret_cast<std::uintptr_t>(&ts);
    return enter_with(want, arg);
}

int ring::submit_and_wait_batch(unsigned want, std::chrono::microseconds min_wait,
                                std::chrono::nanoseconds timeout) noexcept {
    if (!features_.contains(feature::min_timeout)) return -EOPNOTSUPP;
    // With no overall timeout the kernel would treat min_wait as one, and return at its end
    // even with nothing there.
    const __kernel_timespec ts = to_timespec(timeout);
    uapi::getevents_arg arg{};
    arg.min_wait_usec = static_cast<std::uint32_t>(
        std::clamp<std::chrono::microseconds::rep>(min_wait.count(), 1, UINT32_MAX));
    arg.ts = reinterpret_cast<std::uintptr_t>(&ts);
    return enter_with(want, arg);
}

int ring::enter_with(unsigned want, uapi::getevents_arg& arg) noexcept {
    const unsigned to_submit = sq_.flush();
    arg.sigmask_sz = _NSIG / 8;
    const unsigned wake =
        flags_.contains(setup_flag::sqpoll) && sq_.need_wakeup() ? IORING_ENTER_SQ_WAKEUP : 0U;
    return enter(to_submit, want, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | wake, &arg,
                 sizeof(arg));
}

int ring::flush_completions() noexcept {
    if (!sq_.cq_overflow() && !sq_.taskrun()) return 0;
    return enter(0, 0, IORING_ENTER_GETEVENTS);
}

void ring::enable() {
    const int r = register_raw(IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (r < 0) throw_error(-r, "io_uring_register(ENABLE_RINGS)");
}

int ring::register_raw(unsigned opcode, const void* arg, unsigned nr_args) noexcept {
    return sys::io_uring_register(fd_.get(), opcode, arg, nr_args);
}

void completion_queue::set_eventfd_enabled(bool enabled) noexcept {
    if (kflags_ == nullptr) return;
    std::atomic_ref flags(*kflags_);
    auto v = flags.load(std::memory_order_relaxed);
    v = enabled ? (v & ~IORING_CQ_EVENTFD_DISABLED) : (v | IORING_CQ_EVENTFD_DISABLED);
    flags.store(v, std::memory_order_relaxed);
}

void completion_range::refill() {
    for (;;) {
        if (head_ != tail_) {
            current_ = cq_->copy(head_);
            return;
        }
        // Out of known completions: hand the consumed slots back once, then look again.
        cq_->store_head(head_);
        tail_ = cq_->load_tail();
        if (head_ != tail_) continue;
        if (waiter_ == nullptr) {
            done_ = true;
            return;
        }
        const int r = waiter_->submit_and_wait(1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            throw_error(-r, "io_uring_enter", "waiting for completions failed");
        }
        tail_ = cq_->load_tail();
    }
}

} // namespace tram
