// Preparing submission queue entries: one `prep_*` function per io_uring operation.
//
// Each `prep_*` overwrites the whole 64-byte SQE, so set flags, user_data and personality
// after it. The memory an op points to (buffers, paths, iovecs, sockaddrs, msghdrs, statx and
// timespec structs) must stay valid until the op's last CQE has arrived: with
// IORING_FEAT_SUBMIT_STABLE the kernel copies what it needs at submission, but not all ops
// (reads, writes, and anything that goes async) are done with their memory by then.
#pragma once

#include <tram/flag_set.hpp>
#include <tram/opcode.hpp>
#include <tram/registered.hpp>
#include <tram/uapi.hpp>

#include <linux/futex.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <linux/time_types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace tram {

/// IOSQE_* flags of one SQE.
enum class sqe_flag : std::uint8_t {
    fixed_file = IOSQE_FIXED_FILE,
    io_drain = IOSQE_IO_DRAIN,
    io_link = IOSQE_IO_LINK,
    io_hardlink = IOSQE_IO_HARDLINK,
    async = IOSQE_ASYNC,
    buffer_select = IOSQE_BUFFER_SELECT,
    cqe_skip_success = IOSQE_CQE_SKIP_SUCCESS,
};
template <>
inline constexpr bool is_flag_enum<sqe_flag> = true;
using sqe_flags = flag_set<sqe_flag>;

/// Offset value meaning "the file's current position" (for files that have one) or "no
/// offset" (for pipes and sockets).
inline constexpr std::uint64_t current_position = ~std::uint64_t{0};

/// For `*_direct` preparations: let the kernel pick a free slot of the file table and return
/// its index as the result (5.19+).
inline constexpr unsigned alloc_file_index = IORING_FILE_INDEX_ALLOC;

/// Adds flags to an already prepared SQE.
inline void add_flags(io_uring_sqe& sqe, sqe_flags flags) noexcept { sqe.flags |= flags.bits(); }
inline void set_user_data(io_uring_sqe& sqe, std::uint64_t data) noexcept { sqe.user_data = data; }
inline void set_user_data(io_uring_sqe& sqe, const void* data) noexcept {
    sqe.user_data = reinterpret_cast<std::uintptr_t>(data);
}
/// Runs the op with the credentials registered as `id` (see registrar::register_personality).
inline void set_personality(io_uring_sqe& sqe, std::uint16_t id) noexcept { sqe.personality = id; }

namespace detail {

inline std::uint64_t to_addr(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }

// Every preparation starts from a zeroed SQE, so that no field of an earlier use of the slot
// leaks into this op (the kernel rejects non-zero reserved fields with EINVAL).
inline void prep_rw(io_uring_sqe& sqe, opcode op, int fd, std::uint64_t addr, std::uint32_t len,
                    std::uint64_t off) noexcept {
    sqe = io_uring_sqe{};
    sqe.opcode = static_cast<std::uint8_t>(op);
    sqe.fd = fd;
    sqe.addr = addr;
    sqe.len = len;
    sqe.off = off;
}

inline void prep_rw(io_uring_sqe& sqe, opcode op, file_ref file, std::uint64_t addr,
                    std::uint32_t len, std::uint64_t off) noexcept {
    prep_rw(sqe, op, file.value(), addr, len, off);
    if (file.fixed()) sqe.flags |= IOSQE_FIXED_FILE;
}

// Ops that create a descriptor take "slot + 1" in file_index, 0 meaning a normal fd.
inline void set_target_slot(io_uring_sqe& sqe, unsigned slot) noexcept {
    sqe.file_index = slot == alloc_file_index ? alloc_file_index : slot + 1;
}

} // namespace detail

// ---- No-op ------------------------------------------------------------------------------

/// IORING_OP_NOP: completes with result 0.
inline void prep_nop(io_uring_sqe& sqe) noexcept { detail::prep_rw(sqe, opcode::nop, -1, 0, 0, 0); }

/// IORING_OP_NOP that completes with `result` instead of 0 (IORING_NOP_INJECT_RESULT, 6.12):
/// an error CQE on demand, for testing error paths.
inline void prep_nop_result(io_uring_sqe& sqe, int result) noexcept {
    prep_nop(sqe);
    sqe.rw_flags = static_cast<int>(uapi::nop_inject_result);
    sqe.len = static_cast<std::uint32_t>(result);
}

/// IORING_OP_NOP whose 32-byte CQE carries `extra1` and `extra2` in its extra words
/// (IORING_NOP_CQE32, 6.18; on a CQE32 ring). Older kernels answer EINVAL.
inline void prep_nop_cqe32(io_uring_sqe& sqe, std::uint64_t extra1, std::uint64_t extra2) noexcept {
    prep_nop(sqe);
    sqe.rw_flags = static_cast<int>(uapi::nop_cqe32);
    sqe.off = extra1;
    sqe.addr = extra2;
}

// ---- Reads and writes ---------------------------------------------------------------------

/// IORING_OP_READ into `buf` at `offset` (or `current_position`).
inline void prep_read(io_uring_sqe& sqe, file_ref file, std::span<std::byte> buf,
                      std::uint64_t offset, int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::read, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
}
/// IORING_OP_READ_FIXED into a registered buffer.
inline void prep_read(io_uring_sqe& sqe, file_ref file, registered_buffer buf, std::uint64_t offset,
                      int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::read_fixed, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
    sqe.buf_index = buf.index();
}
/// IORING_OP_WRITE from `buf` at `offset` (or `current_position`).
inline void prep_write(io_uring_sqe& sqe, file_ref file, std::span<const std::byte> buf,
                       std::uint64_t offset, int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::write, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
}
/// IORING_OP_WRITE_FIXED from a registered buffer.
inline void prep_write(io_uring_sqe& sqe, file_ref file, registered_buffer buf,
                       std::uint64_t offset, int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::write_fixed, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
    sqe.buf_index = buf.index();
}
/// IORING_OP_READV (preadv2).
inline void prep_readv(io_uring_sqe& sqe, file_ref file, std::span<const iovec> iovecs,
                       std::uint64_t offset, int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::readv, file, detail::to_addr(iovecs.data()),
                    static_cast<std::uint32_t>(iovecs.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
}
/// IORING_OP_WRITEV (pwritev2).
inline void prep_writev(io_uring_sqe& sqe, file_ref file, std::span<const iovec> iovecs,
                        std::uint64_t offset, int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::writev, file, detail::to_addr(iovecs.data()),
                    static_cast<std::uint32_t>(iovecs.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
}
/// IORING_OP_READV_FIXED (6.15): vectored read whose iovecs all lie in registered buffer
/// `buf_index`.
inline void prep_readv_fixed(io_uring_sqe& sqe, file_ref file, std::span<const iovec> iovecs,
                             std::uint64_t offset, std::uint16_t buf_index,
                             int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::readv_fixed, file, detail::to_addr(iovecs.data()),
                    static_cast<std::uint32_t>(iovecs.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
    sqe.buf_index = buf_index;
}
/// IORING_OP_WRITEV_FIXED (6.15).
inline void prep_writev_fixed(io_uring_sqe& sqe, file_ref file, std::span<const iovec> iovecs,
                              std::uint64_t offset, std::uint16_t buf_index,
                              int rw_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::writev_fixed, file, detail::to_addr(iovecs.data()),
                    static_cast<std::uint32_t>(iovecs.size()), offset);
    sqe.rw_flags = static_cast<std::uint32_t>(rw_flags);
    sqe.buf_index = buf_index;
}
/// IORING_OP_READ with a buffer the kernel picks from provided-buffer group `buf_group`.
inline void prep_read_select(io_uring_sqe& sqe, file_ref file, std::uint32_t max_len,
                             std::uint64_t offset, std::uint16_t buf_group) noexcept {
    detail::prep_rw(sqe, opcode::read, file, 0, max_len, offset);
    sqe.buf_group = buf_group;
    sqe.flags |= IOSQE_BUFFER_SELECT;
}
/// IORING_OP_READ_MULTISHOT (6.7): keeps reading a pollable file into provided buffers of
/// `buf_group`, one CQE per read, until a CQE arrives without IORING_CQE_F_MORE.
inline void prep_read_multishot(io_uring_sqe& sqe, file_ref file, std::uint32_t max_len,
                                std::uint64_t offset, std::uint16_t buf_group) noexcept {
    detail::prep_rw(sqe, opcode::read_multishot, file, 0, max_len, offset);
    sqe.buf_group = buf_group;
    sqe.flags |= IOSQE_BUFFER_SELECT;
}

// ---- Syncing and space management ----------------------------------------------------------

inline constexpr std::uint32_t fsync_datasync = IORING_FSYNC_DATASYNC;

/// IORING_OP_FSYNC; `fsync_datasync` makes it fdatasync.
inline void prep_fsync(io_uring_sqe& sqe, file_ref file, std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::fsync, file, 0, 0, 0);
    sqe.fsync_flags = flags;
}
/// IORING_OP_SYNC_FILE_RANGE.
inline void prep_sync_file_range(io_uring_sqe& sqe, file_ref file, std::uint64_t offset,
                                 std::uint32_t len, std::uint32_t flags) noexcept {
    detail::prep_rw(sqe, opcode::sync_file_range, file, 0, len, offset);
    sqe.sync_range_flags = flags;
}
/// IORING_OP_FALLOCATE: the kernel takes the length in addr and the mode in len.
inline void prep_fallocate(io_uring_sqe& sqe, file_ref file, int mode, std::uint64_t offset,
                           std::uint64_t len) noexcept {
    detail::prep_rw(sqe, opcode::fallocate, file, len, static_cast<std::uint32_t>(mode), offset);
}
/// IORING_OP_FADVISE (posix_fadvise).
inline void prep_fadvise(io_uring_sqe& sqe, file_ref file, std::uint64_t offset, std::uint32_t len,
                         int advice) noexcept {
    detail::prep_rw(sqe, opcode::fadvise, file, 0, len, offset);
    sqe.fadvise_advice = static_cast<std::uint32_t>(advice);
}
/// IORING_OP_MADVISE.
inline void prep_madvise(io_uring_sqe& sqe, void* addr, std::uint32_t len, int advice) noexcept {
    detail::prep_rw(sqe, opcode::madvise, -1, detail::to_addr(addr), len, 0);
    sqe.fadvise_advice = static_cast<std::uint32_t>(advice);
}
/// IORING_OP_FTRUNCATE (6.9).
inline void prep_ftruncate(io_uring_sqe& sqe, file_ref file, std::uint64_t length) noexcept {
    detail::prep_rw(sqe, opcode::ftruncate, file, 0, 0, length);
}

// ---- Opening, closing, and the file system --------------------------------------------------

/// IORING_OP_OPENAT; `path` must stay valid until submission (SUBMIT_STABLE) or completion.
inline void prep_openat(io_uring_sqe& sqe, int dirfd, const char* path, int flags,
                        mode_t mode) noexcept {
    detail::prep_rw(sqe, opcode::openat, dirfd, detail::to_addr(path), mode, 0);
    sqe.open_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_OPENAT into slot `slot` of the registered file table (or `alloc_file_index`).
inline void prep_openat_direct(io_uring_sqe& sqe, int dirfd, const char* path, int flags,
                               mode_t mode, unsigned slot) noexcept {
    prep_openat(sqe, dirfd, path, flags, mode);
    detail::set_target_slot(sqe, slot);
}
/// IORING_OP_OPENAT2 with a struct open_how.
inline void prep_openat2(io_uring_sqe& sqe, int dirfd, const char* path,
                         const open_how* how) noexcept {
    detail::prep_rw(sqe, opcode::openat2, dirfd, detail::to_addr(path), sizeof(open_how),
                    detail::to_addr(how));
}
inline void prep_openat2_direct(io_uring_sqe& sqe, int dirfd, const char* path, const open_how* how,
                                unsigned slot) noexcept {
    prep_openat2(sqe, dirfd, path, how);
    detail::set_target_slot(sqe, slot);
}
/// IORING_OP_CLOSE of a plain descriptor.
inline void prep_close(io_uring_sqe& sqe, int fd) noexcept {
    detail::prep_rw(sqe, opcode::close, fd, 0, 0, 0);
}
/// IORING_OP_CLOSE of a registered file slot (5.15+).
inline void prep_close(io_uring_sqe& sqe, registered_fd fd) noexcept {
    detail::prep_rw(sqe, opcode::close, 0, 0, 0, 0);
    sqe.file_index = fd.index + 1;
}
/// IORING_OP_STATX into `out`.
inline void prep_statx(io_uring_sqe& sqe, int dirfd, const char* path, int flags,
                       std::uint32_t mask, struct statx* out) noexcept {
    detail::prep_rw(sqe, opcode::statx, dirfd, detail::to_addr(path), mask, detail::to_addr(out));
    sqe.statx_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_RENAMEAT (renameat2 flags).
inline void prep_renameat(io_uring_sqe& sqe, int old_dirfd, const char* old_path, int new_dirfd,
                          const char* new_path, unsigned flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::renameat, old_dirfd, detail::to_addr(old_path),
                    static_cast<std::uint32_t>(new_dirfd), detail::to_addr(new_path));
    sqe.rename_flags = flags;
}
/// IORING_OP_UNLINKAT (AT_REMOVEDIR removes a directory).
inline void prep_unlinkat(io_uring_sqe& sqe, int dirfd, const char* path, int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::unlinkat, dirfd, detail::to_addr(path), 0, 0);
    sqe.unlink_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_MKDIRAT.
inline void prep_mkdirat(io_uring_sqe& sqe, int dirfd, const char* path, mode_t mode) noexcept {
    detail::prep_rw(sqe, opcode::mkdirat, dirfd, detail::to_addr(path), mode, 0);
}
/// IORING_OP_SYMLINKAT: creates `link_path` pointing at `target`.
inline void prep_symlinkat(io_uring_sqe& sqe, const char* target, int new_dirfd,
                           const char* link_path) noexcept {
    detail::prep_rw(sqe, opcode::symlinkat, new_dirfd, detail::to_addr(target), 0,
                    detail::to_addr(link_path));
}
/// IORING_OP_LINKAT.
inline void prep_linkat(io_uring_sqe& sqe, int old_dirfd, const char* old_path, int new_dirfd,
                        const char* new_path, int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::linkat, old_dirfd, detail::to_addr(old_path),
                    static_cast<std::uint32_t>(new_dirfd), detail::to_addr(new_path));
    sqe.hardlink_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_GETXATTR of `path`; the result is the value's length.
inline void prep_getxattr(io_uring_sqe& sqe, const char* path, const char* name,
                          std::span<char> value) noexcept {
    detail::prep_rw(sqe, opcode::getxattr, 0, detail::to_addr(name),
                    static_cast<std::uint32_t>(value.size()), detail::to_addr(value.data()));
    sqe.addr3 = detail::to_addr(path);
}
/// IORING_OP_SETXATTR (XATTR_CREATE / XATTR_REPLACE flags).
inline void prep_setxattr(io_uring_sqe& sqe, const char* path, const char* name,
                          std::span<const char> value, int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::setxattr, 0, detail::to_addr(name),
                    static_cast<std::uint32_t>(value.size()), detail::to_addr(value.data()));
    sqe.addr3 = detail::to_addr(path);
    sqe.xattr_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_FGETXATTR.
inline void prep_fgetxattr(io_uring_sqe& sqe, file_ref file, const char* name,
                           std::span<char> value) noexcept {
    detail::prep_rw(sqe, opcode::fgetxattr, file, detail::to_addr(name),
                    static_cast<std::uint32_t>(value.size()), detail::to_addr(value.data()));
}
/// IORING_OP_FSETXATTR.
inline void prep_fsetxattr(io_uring_sqe& sqe, file_ref file, const char* name,
                           std::span<const char> value, int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::fsetxattr, file, detail::to_addr(name),
                    static_cast<std::uint32_t>(value.size()), detail::to_addr(value.data()));
    sqe.xattr_flags = static_cast<std::uint32_t>(flags);
}

// ---- Pipes: splice and tee -----------------------------------------------------------------

/// Offset value for splice meaning "this end is a pipe, or use the file position".
inline constexpr std::int64_t no_offset = -1;

/// IORING_OP_SPLICE of up to `nbytes` from `in` to `out`; one of them must be a pipe.
inline void prep_splice(io_uring_sqe& sqe, file_ref in, std::int64_t in_offset, file_ref out,
                        std::int64_t out_offset, std::uint32_t nbytes,
                        std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::splice, out, 0, nbytes, static_cast<std::uint64_t>(out_offset));
    sqe.splice_off_in = static_cast<std::uint64_t>(in_offset);
    sqe.splice_fd_in = in.value();
    sqe.splice_flags = flags | (in.fixed() ? SPLICE_F_FD_IN_FIXED : 0U);
}
/// IORING_OP_TEE: duplicates up to `nbytes` from pipe `in` to pipe `out`.
inline void prep_tee(io_uring_sqe& sqe, file_ref in, file_ref out, std::uint32_t nbytes,
                     std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::tee, out, 0, nbytes, 0);
    sqe.splice_fd_in = in.value();
    sqe.splice_flags = flags | (in.fixed() ? SPLICE_F_FD_IN_FIXED : 0U);
}
/// IORING_OP_PIPE (6.16): creates a pipe, writing its two descriptors to `fds`.
inline void prep_pipe(io_uring_sqe& sqe, int (&fds)[2], int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::pipe, 0, detail::to_addr(fds), 0, 0);
    sqe.rw_flags = static_cast<std::uint32_t>(flags);
}

// ---- Polling --------------------------------------------------------------------------------

/// IORING_OP_POLL_ADD, one shot: completes with the ready events of `poll_mask` (POLLIN...).
inline void prep_poll_add(io_uring_sqe& sqe, file_ref file, std::uint32_t poll_mask) noexcept {
    detail::prep_rw(sqe, opcode::poll_add, file, 0, 0, 0);
    sqe.poll32_events = poll_mask;
}
/// IORING_OP_POLL_ADD, multishot: one CQE per readiness change, each with
/// IORING_CQE_F_MORE until the poll ends.
inline void prep_poll_multishot(io_uring_sqe& sqe, file_ref file,
                                std::uint32_t poll_mask) noexcept {
    prep_poll_add(sqe, file, poll_mask);
    sqe.len = IORING_POLL_ADD_MULTI;
}
/// IORING_OP_POLL_REMOVE of the poll submitted with `user_data`.
inline void prep_poll_remove(io_uring_sqe& sqe, std::uint64_t user_data) noexcept {
    detail::prep_rw(sqe, opcode::poll_remove, -1, user_data, 0, 0);
}
/// IORING_OP_POLL_REMOVE used as an update: new events (IORING_POLL_UPDATE_EVENTS) and/or new
/// user_data (IORING_POLL_UPDATE_USER_DATA) for the poll submitted with `old_user_data`.
inline void prep_poll_update(io_uring_sqe& sqe, std::uint64_t old_user_data,
                             std::uint64_t new_user_data, std::uint32_t poll_mask,
                             std::uint32_t flags) noexcept {
    detail::prep_rw(sqe, opcode::poll_remove, -1, old_user_data, flags, new_user_data);
    sqe.poll32_events = poll_mask;
}
/// IORING_OP_EPOLL_CTL.
inline void prep_epoll_ctl(io_uring_sqe& sqe, int epfd, int fd, int op,
                           const epoll_event* ev) noexcept {
    detail::prep_rw(sqe, opcode::epoll_ctl, epfd, detail::to_addr(ev),
                    static_cast<std::uint32_t>(op), static_cast<std::uint64_t>(fd));
}
/// IORING_OP_EPOLL_WAIT (6.15).
inline void prep_epoll_wait(io_uring_sqe& sqe, int epfd, std::span<epoll_event> events,
                            std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::epoll_wait, epfd, detail::to_addr(events.data()),
                    static_cast<std::uint32_t>(events.size()), 0);
    sqe.rw_flags = flags;
}

// ---- Timeouts and cancellation ----------------------------------------------------------------

/// IORING_OP_TIMEOUT: completes with -ETIME after `ts`, or with 0 once `count` other CQEs
/// were posted (0: only the time counts). Flags: IORING_TIMEOUT_ABS, _BOOTTIME, _REALTIME,
/// _ETIME_SUCCESS, and `uapi::timeout_multishot` (6.4).
inline void prep_timeout(io_uring_sqe& sqe, const __kernel_timespec* ts, std::uint32_t count = 0,
                         std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::timeout, -1, detail::to_addr(ts), 1, count);
    sqe.timeout_flags = flags;
}
/// IORING_OP_TIMEOUT_REMOVE of the timeout submitted with `user_data`.
inline void prep_timeout_remove(io_uring_sqe& sqe, std::uint64_t user_data,
                                std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::timeout_remove, -1, user_data, 0, 0);
    sqe.timeout_flags = flags;
}
/// IORING_OP_TIMEOUT_REMOVE with IORING_TIMEOUT_UPDATE: a new expiry for a pending timeout.
inline void prep_timeout_update(io_uring_sqe& sqe, const __kernel_timespec* ts,
                                std::uint64_t user_data, std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::timeout_remove, -1, user_data, 0, detail::to_addr(ts));
    sqe.timeout_flags = flags | IORING_TIMEOUT_UPDATE;
}
/// IORING_OP_LINK_TIMEOUT: must follow an SQE flagged io_link; cancels that op if it has not
/// completed after `ts` (the op then ends with -ECANCELED, the timeout with -ETIME).
inline void prep_link_timeout(io_uring_sqe& sqe, const __kernel_timespec* ts,
                              std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::link_timeout, -1, detail::to_addr(ts), 1, 0);
    sqe.timeout_flags = flags;
}
/// IORING_OP_ASYNC_CANCEL of the op(s) submitted with `user_data`; `all` cancels every match
/// and completes with their number.
inline void prep_cancel(io_uring_sqe& sqe, std::uint64_t user_data, bool all = false) noexcept {
    detail::prep_rw(sqe, opcode::async_cancel, -1, user_data, 0, 0);
    sqe.cancel_flags = all ? IORING_ASYNC_CANCEL_ALL : 0U;
}
/// IORING_OP_ASYNC_CANCEL of the op(s) working on `file` (5.19+).
inline void prep_cancel_fd(io_uring_sqe& sqe, file_ref file, bool all = false) noexcept {
    detail::prep_rw(sqe, opcode::async_cancel, file.value(), 0, 0, 0);
    sqe.cancel_flags = IORING_ASYNC_CANCEL_FD | (file.fixed() ? IORING_ASYNC_CANCEL_FD_FIXED : 0U) |
                       (all ? IORING_ASYNC_CANCEL_ALL : 0U);
}
/// IORING_OP_ASYNC_CANCEL of one op in flight, whichever the kernel finds first (5.19+);
/// add IORING_ASYNC_CANCEL_ALL to `cancel_flags` to cancel them all. The result is the number
/// of ops cancelled (with ALL) or 0, or -ENOENT when nothing was in flight.
inline void prep_cancel_any(io_uring_sqe& sqe) noexcept {
    detail::prep_rw(sqe, opcode::async_cancel, -1, 0, 0, 0);
    sqe.cancel_flags = IORING_ASYNC_CANCEL_ANY;
}

// ---- Sockets ----------------------------------------------------------------------------------

/// IORING_OP_SOCKET (5.19): the result is the new descriptor.
inline void prep_socket(io_uring_sqe& sqe, int domain, int type, int protocol) noexcept {
    detail::prep_rw(sqe, opcode::socket, domain, 0, static_cast<std::uint32_t>(protocol),
                    static_cast<std::uint64_t>(type));
}
/// IORING_OP_SOCKET into slot `slot` of the file table (or `alloc_file_index`).
inline void prep_socket_direct(io_uring_sqe& sqe, int domain, int type, int protocol,
                               unsigned slot) noexcept {
    prep_socket(sqe, domain, type, protocol);
    detail::set_target_slot(sqe, slot);
}
/// IORING_OP_BIND (6.11).
inline void prep_bind(io_uring_sqe& sqe, file_ref file, const sockaddr* addr,
                      socklen_t addrlen) noexcept {
    detail::prep_rw(sqe, opcode::bind, file, detail::to_addr(addr), 0, addrlen);
}
/// IORING_OP_LISTEN (6.11).
inline void prep_listen(io_uring_sqe& sqe, file_ref file, int backlog) noexcept {
    detail::prep_rw(sqe, opcode::listen, file, 0, static_cast<std::uint32_t>(backlog), 0);
}
/// IORING_OP_ACCEPT; `addr`/`addrlen` may be null. Flags are accept4's (SOCK_CLOEXEC...).
inline void prep_accept(io_uring_sqe& sqe, file_ref listener, sockaddr* addr, socklen_t* addrlen,
                        int flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::accept, listener, detail::to_addr(addr), 0,
                    detail::to_addr(addrlen));
    sqe.accept_flags = static_cast<std::uint32_t>(flags);
}
/// IORING_OP_ACCEPT into slot `slot` of the file table (or `alloc_file_index`).
inline void prep_accept_direct(io_uring_sqe& sqe, file_ref listener, sockaddr* addr,
                               socklen_t* addrlen, int flags, unsigned slot) noexcept {
    prep_accept(sqe, listener, addr, addrlen, flags);
    detail::set_target_slot(sqe, slot);
}
/// Multishot IORING_OP_ACCEPT (5.19): one CQE per connection, each with IORING_CQE_F_MORE
/// while the accept stays armed.
inline void prep_multishot_accept(io_uring_sqe& sqe, file_ref listener, int flags = 0) noexcept {
    prep_accept(sqe, listener, nullptr, nullptr, flags);
    sqe.ioprio |= IORING_ACCEPT_MULTISHOT;
}
/// Multishot accept straight into free slots of the file table.
inline void prep_multishot_accept_direct(io_uring_sqe& sqe, file_ref listener,
                                         int flags = 0) noexcept {
    prep_multishot_accept(sqe, listener, flags);
    sqe.file_index = alloc_file_index;
}
/// IORING_OP_CONNECT.
inline void prep_connect(io_uring_sqe& sqe, file_ref file, const sockaddr* addr,
                         socklen_t addrlen) noexcept {
    detail::prep_rw(sqe, opcode::connect, file, detail::to_addr(addr), 0, addrlen);
}
/// IORING_OP_SHUTDOWN (SHUT_RD, SHUT_WR, SHUT_RDWR).
inline void prep_shutdown(io_uring_sqe& sqe, file_ref file, int how) noexcept {
    detail::prep_rw(sqe, opcode::shutdown, file, 0, static_cast<std::uint32_t>(how), 0);
}
/// IORING_OP_SEND.
inline void prep_send(io_uring_sqe& sqe, file_ref file, std::span<const std::byte> buf,
                      int msg_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::send, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
}
/// IORING_OP_SEND to an address (sendto, 6.0), for unconnected datagram sockets.
inline void prep_send_to(io_uring_sqe& sqe, file_ref file, std::span<const std::byte> buf,
                         const sockaddr* addr, socklen_t addrlen, int msg_flags = 0) noexcept {
    prep_send(sqe, file, buf, msg_flags);
    sqe.addr2 = detail::to_addr(addr);
    sqe.addr_len = static_cast<std::uint16_t>(addrlen);
}
/// IORING_OP_RECV into `buf`.
inline void prep_recv(io_uring_sqe& sqe, file_ref file, std::span<std::byte> buf,
                      int msg_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::recv, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
}
/// IORING_OP_RECV into a buffer the kernel picks from provided-buffer group `buf_group`
/// (0 for `max_len`: up to the buffer's size).
inline void prep_recv_select(io_uring_sqe& sqe, file_ref file, std::uint16_t buf_group,
                             std::uint32_t max_len = 0, int msg_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::recv, file, 0, max_len, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
    sqe.buf_group = buf_group;
    sqe.flags |= IOSQE_BUFFER_SELECT;
}
/// Multishot IORING_OP_RECV (6.0): one CQE per receive, each in a provided buffer of
/// `buf_group`, until a CQE arrives without IORING_CQE_F_MORE (also when the group runs dry:
/// that CQE carries -ENOBUFS and the recv must be armed again).
inline void prep_recv_multishot(io_uring_sqe& sqe, file_ref file, std::uint16_t buf_group,
                                int msg_flags = 0) noexcept {
    prep_recv_select(sqe, file, buf_group, 0, msg_flags);
    sqe.ioprio |= IORING_RECV_MULTISHOT;
}
/// IORING_OP_SENDMSG.
inline void prep_sendmsg(io_uring_sqe& sqe, file_ref file, const msghdr* msg,
                         int msg_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::sendmsg, file, detail::to_addr(msg), 1, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
}
/// IORING_OP_RECVMSG.
inline void prep_recvmsg(io_uring_sqe& sqe, file_ref file, msghdr* msg,
                         int msg_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::recvmsg, file, detail::to_addr(msg), 1, 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
}
/// Multishot IORING_OP_RECVMSG (6.0): each provided buffer starts with an
/// io_uring_recvmsg_out header laid out as `msg` describes (name and control lengths).
inline void prep_recvmsg_multishot(io_uring_sqe& sqe, file_ref file, msghdr* msg,
                                   std::uint16_t buf_group, int msg_flags = 0) noexcept {
    prep_recvmsg(sqe, file, msg, msg_flags);
    sqe.buf_group = buf_group;
    sqe.flags |= IOSQE_BUFFER_SELECT;
    sqe.ioprio |= IORING_RECV_MULTISHOT;
}
/// IORING_OP_SEND_ZC (6.0): completes twice, first with the result (IORING_CQE_F_MORE set),
/// then with a notification (IORING_CQE_F_NOTIF) once the kernel no longer reads `buf`.
/// `zc_flags`: IORING_RECVSEND_POLL_FIRST, IORING_SEND_ZC_REPORT_USAGE.
inline void prep_send_zc(io_uring_sqe& sqe, file_ref file, std::span<const std::byte> buf,
                         int msg_flags = 0, std::uint16_t zc_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::send_zc, file, detail::to_addr(buf.data()),
                    static_cast<std::uint32_t>(buf.size()), 0);
    sqe.msg_flags = static_cast<std::uint32_t>(msg_flags);
    sqe.ioprio = zc_flags;
}
/// IORING_OP_SEND_ZC from a registered buffer.
inline void prep_send_zc(io_uring_sqe& sqe, file_ref file, registered_buffer buf, int msg_flags = 0,
                         std::uint16_t zc_flags = 0) noexcept {
    prep_send_zc(sqe, file, std::span<const std::byte>(buf.memory()), msg_flags, zc_flags);
    sqe.ioprio |= IORING_RECVSEND_FIXED_BUF;
    sqe.buf_index = buf.index();
}
/// IORING_OP_SENDMSG_ZC (6.1), completing like `prep_send_zc`.
inline void prep_sendmsg_zc(io_uring_sqe& sqe, file_ref file, const msghdr* msg,
                            int msg_flags = 0) noexcept {
    prep_sendmsg(sqe, file, msg, msg_flags);
    sqe.opcode = static_cast<std::uint8_t>(opcode::sendmsg_zc);
}
/// IORING_OP_RECV_ZC (6.15): zero-copy receive into a registered zcrx interface queue. Needs
/// a NIC with header split; not available on loopback.
inline void prep_recv_zc(io_uring_sqe& sqe, file_ref file, std::uint32_t ifq_index,
                         std::uint32_t len = 0, bool multishot = true) noexcept {
    detail::prep_rw(sqe, opcode::recv_zc, file, 0, len, 0);
    sqe.file_index = ifq_index;
    sqe.ioprio = multishot ? IORING_RECV_MULTISHOT : 0;
}

// ---- Provided buffers (classic) -------------------------------------------------------------

/// IORING_OP_PROVIDE_BUFFERS: hands `count` buffers of `size` bytes each, laid out back to back
/// from `addr`, to group `buf_group`, with ids starting at `first_id`.
inline void prep_provide_buffers(io_uring_sqe& sqe, void* addr, std::uint32_t size, int count,
                                 std::uint16_t buf_group, std::uint16_t first_id) noexcept {
    detail::prep_rw(sqe, opcode::provide_buffers, count, detail::to_addr(addr), size, first_id);
    sqe.buf_group = buf_group;
}
/// IORING_OP_REMOVE_BUFFERS: takes up to `count` unused buffers back out of `buf_group`.
inline void prep_remove_buffers(io_uring_sqe& sqe, int count, std::uint16_t buf_group) noexcept {
    detail::prep_rw(sqe, opcode::remove_buffers, count, 0, 0, 0);
    sqe.buf_group = buf_group;
}

// ---- Rings, registered files and commands -----------------------------------------------------

/// IORING_OP_MSG_RING (5.18): posts a CQE with `result` and `user_data` on the ring whose fd is
/// `ring_fd`. Flags: `uapi::msg_ring_flags_pass` (6.3) passes `cqe_flags` through.
inline void prep_msg_ring(io_uring_sqe& sqe, file_ref ring_fd, std::uint32_t result,
                          std::uint64_t user_data, std::uint32_t flags = 0,
                          std::uint32_t cqe_flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::msg_ring, ring_fd, IORING_MSG_DATA, result, user_data);
    sqe.msg_ring_flags = flags;
    sqe.file_index = cqe_flags;
}
/// IORING_OP_MSG_RING with IORING_MSG_SEND_FD (6.0): installs our registered file `source` in
/// slot `target_slot` (or `alloc_file_index`) of the other ring's table.
inline void prep_msg_ring_fd(io_uring_sqe& sqe, file_ref ring_fd, registered_fd source,
                             unsigned target_slot, std::uint64_t user_data,
                             std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::msg_ring, ring_fd, IORING_MSG_SEND_FD, 0, user_data);
    sqe.addr3 = source.index;
    detail::set_target_slot(sqe, target_slot);
    sqe.msg_ring_flags = flags;
}
/// IORING_OP_FILES_UPDATE: replaces registered files from slot `offset` on (-1 clears a slot).
inline void prep_files_update(io_uring_sqe& sqe, std::span<int> fds, int offset) noexcept {
    detail::prep_rw(sqe, opcode::files_update, -1, detail::to_addr(fds.data()),
                    static_cast<std::uint32_t>(fds.size()), static_cast<std::uint64_t>(offset));
}
/// IORING_OP_FIXED_FD_INSTALL (6.8): turns registered file `fd` into a normal descriptor,
/// which is the result. `uapi::fixed_fd_no_cloexec` leaves O_CLOEXEC off.
inline void prep_fixed_fd_install(io_uring_sqe& sqe, registered_fd fd,
                                  std::uint32_t flags = 0) noexcept {
    detail::prep_rw(sqe, opcode::fixed_fd_install, static_cast<int>(fd.index), 0, 0, 0);
    sqe.flags = IOSQE_FIXED_FILE;
    sqe.rw_flags = flags; // install_fd_flags shares the op-flags word
}
/// IORING_OP_URING_CMD: passes command `cmd_op` to the file's driver. On rings set up with
/// SQE128 the 80-byte command payload follows in `sqe.cmd`.
inline void prep_uring_cmd(io_uring_sqe& sqe, file_ref file, std::uint32_t cmd_op) noexcept {
    detail::prep_rw(sqe, opcode::uring_cmd, file, 0, 0, 0);
    sqe.cmd_op = cmd_op;
}
/// IORING_OP_URING_CMD for a socket (6.7): SOCKET_URING_OP_SIOCINQ, _SIOCOUTQ (no option) and
/// _GETSOCKOPT, _SETSOCKOPT with `level`, `optname` and `optval`.
inline void prep_socket_cmd(io_uring_sqe& sqe, file_ref socket, std::uint32_t cmd_op, int level,
                            int optname, std::span<std::byte> optval) noexcept {
    prep_uring_cmd(sqe, socket, cmd_op);
    // level and optname overlay addr; optlen overlays file_index; optval overlays addr3.
    sqe.addr = static_cast<std::uint32_t>(level) |
               (std::uint64_t{static_cast<std::uint32_t>(optname)} << 32);
    sqe.file_index = static_cast<std::uint32_t>(optval.size());
    sqe.addr3 = detail::to_addr(optval.data());
}

// ---- Processes and futexes ----------------------------------------------------------------------

/// IORING_OP_WAITID (6.7), like waitid(2); `info` receives the siginfo.
inline void prep_waitid(io_uring_sqe& sqe, idtype_t idtype, id_t id, siginfo_t* info,
                        int options) noexcept {
    detail::prep_rw(sqe, opcode::waitid, static_cast<int>(id), 0,
                    static_cast<std::uint32_t>(idtype), 0);
    sqe.file_index = static_cast<std::uint32_t>(options);
    sqe.addr2 = detail::to_addr(info);
}
/// IORING_OP_FUTEX_WAIT (6.7): sleeps while `*futex == expected` (futex2 `futex_flags`, e.g.
/// `uapi::futex2_size_u32 | uapi::futex2_private`).
inline void prep_futex_wait(io_uring_sqe& sqe, std::uint32_t* futex, std::uint64_t expected,
                            std::uint32_t futex_flags,
                            std::uint64_t mask = uapi::futex_bitset_match_any) noexcept {
    detail::prep_rw(sqe, opcode::futex_wait, static_cast<int>(futex_flags), detail::to_addr(futex),
                    0, expected);
    sqe.addr3 = mask;
}
/// IORING_OP_FUTEX_WAKE (6.7): wakes up to `count` waiters; the result is how many woke.
inline void prep_futex_wake(io_uring_sqe& sqe, std::uint32_t* futex, std::uint64_t count,
                            std::uint32_t futex_flags,
                            std::uint64_t mask = uapi::futex_bitset_match_any) noexcept {
    detail::prep_rw(sqe, opcode::futex_wake, static_cast<int>(futex_flags), detail::to_addr(futex),
                    0, count);
    sqe.addr3 = mask;
}
/// IORING_OP_FUTEX_WAITV (6.7): waits on several futexes; the result is the index that woke.
inline void prep_futex_waitv(io_uring_sqe& sqe, std::span<futex_waitv> futexes) noexcept {
    detail::prep_rw(sqe, opcode::futex_waitv, 0, detail::to_addr(futexes.data()),
                    static_cast<std::uint32_t>(futexes.size()), 0);
}

} // namespace tram
