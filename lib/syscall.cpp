#include "syscall.hpp"

#ifdef TRAM_FAULT_INJECTION
#include "fault_injection.hpp"
#endif

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace tram::sys {
namespace {

int result(long r) noexcept { return r < 0 ? -errno : static_cast<int>(r); }

} // namespace

int io_uring_setup(unsigned entries, io_uring_params* params) noexcept {
#ifdef TRAM_FAULT_INJECTION
    if (const int err = testing::detail::before_setup()) return -err;
#endif
    return result(::syscall(__NR_io_uring_setup, entries, params));
}

int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                   const void* arg, std::size_t arg_size) noexcept {
#ifdef TRAM_FAULT_INJECTION
    // Test builds only (lib/fault_injection.hpp); release builds have no branch here. By
    // value: to_submit must not live in memory, see below.
    const testing::detail::enter_fault fault = testing::detail::before_enter(to_submit);
    if (fault.errnum != 0) return -fault.errnum;
    to_submit = fault.to_submit;
#endif
#if defined(__x86_64__)
    // io_uring_enter is the one call on the hot path (once per loop turn, once per NOP batch):
    // issue it directly rather than through libc's variadic syscall(), which costs a call, an
    // argument shuffle and the errno round trip. The kernel returns -errno in rax, which is
    // already our convention; the syscall instruction clobbers rcx and r11.
    // Every operand is a plain value here, never a load from memory: GCC gives register
    // variables no guarantee across code that runs between their assignment and the asm, and
    // a sanitizer's instrumented load there (a call under TSan) clobbers r8-r10.
    register long r10 asm("r10") = static_cast<long>(flags);
    register long r8 asm("r8") = reinterpret_cast<long>(arg);
    register long r9 asm("r9") = static_cast<long>(arg_size);
    long ret = __NR_io_uring_enter;
    asm volatile("syscall"
                 : "+a"(ret)
                 : "D"(static_cast<long>(fd)), "S"(static_cast<long>(to_submit)),
                   "d"(static_cast<long>(min_complete)), "r"(r10), "r"(r8), "r"(r9)
                 : "rcx", "r11", "memory");
    return static_cast<int>(ret);
#else
    return result(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, arg_size));
#endif
}

int io_uring_register(int fd, unsigned opcode, const void* arg, unsigned nr_args) noexcept {
    return result(::syscall(__NR_io_uring_register, fd, opcode, arg, nr_args));
}

} // namespace tram::sys
