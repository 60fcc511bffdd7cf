// The three io_uring system calls: the ring layer's only way into the kernel.
//
// Every call returns >= 0 or a negated errno, never touching the global errno, so that the
// callers' error paths read the same as the kernel's. This is also the seam where the
// fault-injection tests step in.
#pragma once

#include <linux/io_uring.h>

#include <cstddef>

namespace tram::sys {

[[nodiscard]] int io_uring_setup(unsigned entries, io_uring_params* params) noexcept;
[[nodiscard]] int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
                                 unsigned flags, const void* arg, std::size_t arg_size) noexcept;
[[nodiscard]] int io_uring_register(int fd, unsigned opcode, const void* arg,
                                    unsigned nr_args) noexcept;

} // namespace tram::sys
