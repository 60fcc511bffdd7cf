// Test-only fault injection at the ring layer's system-call boundary (lib/syscall.cpp).
//
// Compiled in only with TRAM_FAULT_INJECTION (the Meson option `fault_injection`, or the
// test suite's private copy of the library): release builds have neither this API nor any
// branch for it on the hot path. Faults are armed per thread, so that a test's faults hit
// only the rings it drives itself, and each armed fault fires a bounded number of times.
#pragma once

#include <cstdint>

namespace tram::testing {

/// What the seam saw and did on the calling thread since the last `reset_faults`.
struct fault_counters {
    std::uint64_t enters = 0;         ///< io_uring_enter calls (failed ones included)
    std::uint64_t enter_failures = 0; ///< of them, failed by injection (the kernel never saw them)
    std::uint64_t short_submits = 0;  ///< of them, passed on with fewer SQEs than asked
    std::uint64_t setups = 0;         ///< io_uring_setup calls (failed ones included)
    std::uint64_t setup_failures = 0; ///< of them, failed by injection
};

/// Makes io_uring_enter fail with `-errnum` (e.g. EINTR, EAGAIN, EBUSY) without entering the
/// kernel: every `every`-th call from now on, `times` times in all. Nothing is submitted by
/// such a call, as when the kernel fails an enter before it looks at the SQ.
void fail_enters(int errnum, unsigned times = 1, unsigned every = 1) noexcept;

/// Makes io_uring_enter submit at most `max_submit` (at least 1) SQEs: every `every`-th call
/// that asks for more, `times` times in all. The real call gets the smaller count and returns
/// what the kernel consumed; the rest stay in the SQ, as after a kernel's short submit.
void short_submits(unsigned max_submit, unsigned times = 1, unsigned every = 1) noexcept;

/// Makes the next `times` io_uring_setup calls fail with `-errnum` (e.g. ENOMEM, EPERM,
/// ENOSYS, EINVAL) without a ring being created.
void fail_setups(int errnum, unsigned times = 1) noexcept;

/// Disarms every fault and zeroes the counters of the calling thread.
void reset_faults() noexcept;

/// The counters of the calling thread.
[[nodiscard]] fault_counters faults_seen() noexcept;

/// Resets the calling thread's faults when it is constructed and again when it is destroyed,
/// so that a failing test cannot leave faults armed for the next one.
class fault_scope {
public:
    fault_scope() noexcept { reset_faults(); }
    fault_scope(const fault_scope&) = delete;
    fault_scope& operator=(const fault_scope&) = delete;
    ~fault_scope() { reset_faults(); }
};

namespace detail {

/// What the seam does with one io_uring_enter: fail it with `errnum`, or (errnum 0) pass it
/// on with `to_submit` SQEs.
struct enter_fault {
    int errnum = 0;
    unsigned to_submit = 0;
};

/// Called by the seam before each io_uring_enter that asks to submit `to_submit` SQEs.
[[nodiscard]] enter_fault before_enter(unsigned to_submit) noexcept;
/// Called by the seam before each io_uring_setup: an errno to fail it with, or 0.
[[nodiscard]] int before_setup() noexcept;

} // namespace detail
} // namespace tram::testing
