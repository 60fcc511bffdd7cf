// Every io_uring operation code, including those of kernels newer than the installed headers.
#pragma once

#include <tram/uapi.hpp>

#include <cstdint>
#include <string_view>

namespace tram {

/// An io_uring operation (`IORING_OP_*`), numbered as the kernel numbers them.
enum class opcode : std::uint8_t {
    nop = 0,
    readv,
    writev,
    fsync,
    read_fixed,
    write_fixed,
    poll_add,
    poll_remove,
    sync_file_range,
    sendmsg,
    recvmsg,
    timeout,
    timeout_remove,
    accept,
    async_cancel,
    link_timeout,
    connect,
    fallocate,
    openat,
    close,
    files_update,
    statx,
    read,
    write,
    fadvise,
    madvise,
    send,
    recv,
    openat2,
    epoll_ctl,
    splice,
    provide_buffers,
    remove_buffers,
    tee,
    shutdown,
    renameat,
    unlinkat,
    mkdirat,
    symlinkat,
    linkat,
    msg_ring,
    fsetxattr,
    setxattr,
    fgetxattr,
    getxattr,
    socket,
    uring_cmd,
    send_zc,
    sendmsg_zc,
    read_multishot, // 6.7
    waitid,         // 6.7
    futex_wait,     // 6.7
    futex_wake,     // 6.7
    futex_waitv,    // 6.7
    fixed_fd_install, // 6.8
    ftruncate,      // 6.9
    bind,           // 6.11
    listen,         // 6.11
    recv_zc,        // 6.15
    epoll_wait,     // 6.15
    readv_fixed,    // 6.15
    writev_fixed,   // 6.15
    pipe,           // 6.16
};

/// One past the highest operation tram knows by name.
inline constexpr unsigned opcode_count = static_cast<unsigned>(opcode::pipe) + 1;

// The kernel's enum and ours must agree wherever the installed header can tell.
static_assert(static_cast<unsigned>(opcode::sendmsg_zc) == IORING_OP_SENDMSG_ZC);
static_assert(static_cast<unsigned>(opcode::uring_cmd) == IORING_OP_URING_CMD);

/// The operation's name as the kernel spells it after `IORING_OP_`, in lower case
/// ("read_fixed"); "unknown" for a number tram has no name for.
[[nodiscard]] std::string_view to_string(opcode op) noexcept;

} // namespace tram
