#include "syscall.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace tram::sys {
namespace {

int result(long r) noexcept { return r < 0 ? -errno : static_cast<int>(r); }

} // namespace

int io_uring_setup(unsigned entries, io_uring_params* params) noexcept {
    return result(::syscall(__NR_io_uring_setup, entries, params));
}

int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                   const void* arg, std::size_t arg_size) noexcept {
    return result(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, arg_size));
}

int io_uring_register(int fd, unsigned opcode, const void* arg, unsigned nr_args) noexcept {
    return result(::syscall(__NR_io_uring_register, fd, opcode, arg, nr_args));
}

} // namespace tram::sys
