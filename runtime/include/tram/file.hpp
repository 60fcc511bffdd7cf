// Files: open, read and write (some bytes or exactly n), sync, space management, status, close,
// with plain descriptors (`file`) or slots of the ring's registered file table (`direct_file`).
#pragma once

#include <tram/descriptor.hpp>
#include <tram/direct_slot.hpp>
#include <tram/driver.hpp>
#include <tram/io_result.hpp>
#include <tram/operation.hpp>
#include <tram/registered.hpp>
#include <tram/sqe.hpp>
#include <tram/task.hpp>

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace tram {

class file;
class direct_file;

/// What statx(2) says about a file: size, type and permissions, owner, times.
class file_status {
public:
    using time_point = std::chrono::system_clock::time_point;

    file_status() noexcept = default;
    explicit file_status(const struct statx& raw) noexcept
        : raw_(raw) {}

    [[nodiscard]] std::uint64_t size() const noexcept { return raw_.stx_size; }
    /// Type and permission bits, as st_mode (S_IFREG | 0644...).
    [[nodiscard]] mode_t mode() const noexcept { return raw_.stx_mode; }
    [[nodiscard]] mode_t permissions() const noexcept { return raw_.stx_mode & 07777; }
    [[nodiscard]] bool is_regular() const noexcept { return S_ISREG(raw_.stx_mode); }
    [[nodiscard]] bool is_directory() const noexcept { return S_ISDIR(raw_.stx_mode); }
    [[nodiscard]] bool is_symlink() const noexcept { return S_ISLNK(raw_.stx_mode); }
    [[nodiscard]] bool is_fifo() const noexcept { return S_ISFIFO(raw_.stx_mode); }
    [[nodiscard]] std::uint32_t links() const noexcept { return raw_.stx_nlink; }
    [[nodiscard]] std::uint64_t inode() const noexcept { return raw_.stx_ino; }
    [[nodiscard]] std::uint32_t uid() const noexcept { return raw_.stx_uid; }
    [[nodiscard]] std::uint32_t gid() const noexcept { return raw_.stx_gid; }
    /// Space allocated, in 512-byte units (less than the size for a sparse file).
    [[nodiscard]] std::uint64_t blocks() const noexcept { return raw_.stx_blocks; }
    [[nodiscard]] std::uint32_t block_size() const noexcept { return raw_.stx_blksize; }
    [[nodiscard]] time_point access_time() const noexcept { return to_time(raw_.stx_atime); }
    [[nodiscard]] time_point modification_time() const noexcept { return to_time(raw_.stx_mtime); }
    [[nodiscard]] time_point change_time() const noexcept { return to_time(raw_.stx_ctime); }
    /// The creation time, where the file system records one.
    [[nodiscard]] std::optional<time_point> birth_time() const noexcept {
        if ((raw_.stx_mask & STATX_BTIME) == 0) return std::nullopt;
        return to_time(raw_.stx_btime);
    }
    /// Everything the kernel returned.
    [[nodiscard]] const struct statx& raw() const noexcept { return raw_; }

private:
    static time_point to_time(const statx_timestamp& t) noexcept {
        return time_point(std::chrono::duration_cast<time_point::duration>(
            std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec)));
    }
    struct statx raw_ {};
};

namespace detail {

/// Throws tram::error "operation subject: cause (ENAME)", e.g.
/// "open /tmp/x/missing: No such file or directory (ENOENT)".
[[noreturn]] void throw_file_error(int errnum, std::string_view operation,
                                   std::string_view subject);
/// Throws tram::error with ENODATA: "operation path: end of file after N of M bytes".
[[noreturn]] void throw_end_of_file(std::string_view operation, std::string_view path,
                                    std::uint64_t done, std::uint64_t wanted);
/// Throws tram::error with EOPNOTSUPP: "operation subject: IORING_OP_X is not supported by
/// this kernel (it needs Linux N or later)".
[[noreturn]] void throw_unsupported(opcode op, std::string_view operation,
                                    std::string_view subject);
/// Whether the running kernel has `op`, probed once per process (true when it cannot probe:
/// the op's own CQE then tells).
[[nodiscard]] bool kernel_supports(opcode op) noexcept;

/// A single-SQE operation on an open file: `prep(sqe)` prepares it, the error names
/// `operation` and the file's path. Gives the byte count when `Counts`, else nothing.
template <typename Prep, bool Counts>
class file_operation final : public checked_awaiter<file_operation<Prep, Counts>> {
public:
    file_operation(Prep prep, const char* operation, const std::string& path) noexcept
        : prep_(std::move(prep))
        , operation_(operation)
        , path_(&path) {}

    void prepare(io_uring_sqe& sqe) noexcept { prep_(sqe); }
    [[noreturn]] void fail(int errnum) const { throw_file_error(errnum, operation_, *path_); }
    auto value_of(io_result r) const noexcept {
        if constexpr (Counts) return std::size_t{r.value()};
    }

private:
    Prep prep_;
    const char* operation_;
    const std::string* path_;
};

template <bool Counts, typename Prep>
[[nodiscard]] file_operation<Prep, Counts> file_op(const char* operation, const std::string& path,
                                                   Prep prep) noexcept {
    return {std::move(prep), operation, path};
}

/// IORING_OP_STATX of a path relative to `dirfd`, or of `dirfd` itself with an empty path.
class statx_operation final : public checked_awaiter<statx_operation> {
public:
    statx_operation(int dirfd, std::string path, int flags, const std::string* shown) noexcept
        : dirfd_(dirfd)
        , flags_(flags)
        , path_(std::move(path))
        , shown_(shown) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        prep_statx(sqe, dirfd_, path_.c_str(), flags_, STATX_BASIC_STATS | STATX_BTIME, &buf_);
    }
    [[noreturn]] void fail(int errnum) const {
        throw_file_error(errnum, "statx", shown_ != nullptr ? *shown_ : path_);
    }
    [[nodiscard]] file_status value_of(io_result) const noexcept { return file_status(buf_); }

private:
    int dirfd_;
    int flags_;
    std::string path_;
    const std::string* shown_; // the file's path, for a statx of a descriptor
    struct statx buf_ {};
};

/// IORING_OP_FTRUNCATE, or EOPNOTSUPP without a system call where the kernel lacks it.
class truncate_operation final : public checked_awaiter<truncate_operation> {
public:
    truncate_operation(file_ref file, std::uint64_t length, const std::string& path) noexcept
        : file_(file)
        , length_(length)
        , path_(&path)
        , supported_(kernel_supports(opcode::ftruncate)) {}

    bool await_ready() const noexcept { return !supported_; }
    void await_resume() {
        if (!supported_) throw_unsupported(opcode::ftruncate, "ftruncate", *path_);
        checked_awaiter::await_resume();
    }
    void prepare(io_uring_sqe& sqe) noexcept { prep_ftruncate(sqe, file_, length_); }
    [[noreturn]] void fail(int errnum) const { throw_file_error(errnum, "ftruncate", *path_); }
    void value_of(io_result) const noexcept {}

private:
    file_ref file_;
    std::uint64_t length_;
    const std::string* path_;
    bool supported_;
};

/// What every open file can do, for a plain descriptor (`file`) and a registered file slot
/// (`direct_file`) alike. `Derived` provides `ref()` (the file_ref for SQEs) and `path()`.
///
/// Every operation returns an awaitable that must be awaited while the file object lives and
/// stays where it is. Reads and writes at `current_position` use and advance the file position
/// (and are the only ones pipes, FIFOs and sockets accept); at an offset they leave it alone.
/// Buffers must stay valid until the co_await has finished (also when it is cancelled).
template <typename Derived>
class basic_file {
public:
    /// Reads up to `buf.size()` bytes; gives the count read, 0 at end of file.
    [[nodiscard]] auto read(std::span<std::byte> buf,
                            std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("read", path(), [f = ref(), buf, offset](io_uring_sqe& sqe) noexcept {
            prep_read(sqe, f, clamp_transfer(buf), offset);
        });
    }
    /// Reads into a registered buffer (IORING_OP_READ_FIXED).
    [[nodiscard]] auto read(registered_buffer buf,
                            std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("read", path(), [f = ref(), buf, offset](io_uring_sqe& sqe) noexcept {
            prep_read(sqe, f, clamp_transfer(buf), offset);
        });
    }
    /// Writes up to `buf.size()` bytes; gives the count written.
    [[nodiscard]] auto write(std::span<const std::byte> buf,
                             std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("write", path(), [f = ref(), buf, offset](io_uring_sqe& sqe) noexcept {
            prep_write(sqe, f, clamp_transfer(buf), offset);
        });
    }
    /// Writes from a registered buffer (IORING_OP_WRITE_FIXED).
    [[nodiscard]] auto write(registered_buffer buf,
                             std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("write", path(), [f = ref(), buf, offset](io_uring_sqe& sqe) noexcept {
            prep_write(sqe, f, clamp_transfer(buf), offset);
        });
    }
    /// preadv2: scatters into `iovecs` (which must outlive the co_await); gives the count.
    [[nodiscard]] auto readv(std::span<const iovec> iovecs,
                             std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("readv", path(),
                             [f = ref(), iovecs, offset](io_uring_sqe& sqe) noexcept {
                                 prep_readv(sqe, f, iovecs, offset);
                             });
    }
    /// pwritev2: gathers from `iovecs` (which must outlive the co_await); gives the count.
    [[nodiscard]] auto writev(std::span<const iovec> iovecs,
                              std::uint64_t offset = current_position) const noexcept {
        return file_op<true>("writev", path(),
                             [f = ref(), iovecs, offset](io_uring_sqe& sqe) noexcept {
                                 prep_writev(sqe, f, iovecs, offset);
                             });
    }

    /// Reads exactly `buf.size()` bytes, as many reads as it takes. End of file first throws
    /// tram::error with ENODATA ("read_exact PATH: end of file after N of M bytes").
    [[nodiscard]] task<> read_exact(std::span<std::byte> buf,
                                    std::uint64_t offset = current_position) const {
        return read_exact_impl(buf, offset);
    }
    [[nodiscard]] task<> read_exact(registered_buffer buf,
                                    std::uint64_t offset = current_position) const {
        return read_exact_impl(buf, offset);
    }
    /// Writes all of `buf`, as many writes as it takes.
    [[nodiscard]] task<> write_all(std::span<const std::byte> buf,
                                   std::uint64_t offset = current_position) const {
        return write_all_impl(buf, offset);
    }
    [[nodiscard]] task<> write_all(registered_buffer buf,
                                   std::uint64_t offset = current_position) const {
        return write_all_impl(buf, offset);
    }

    /// fsync(2): data and metadata reach stable storage.
    [[nodiscard]] auto fsync() const noexcept {
        return file_op<false>("fsync", path(),
                              [f = ref()](io_uring_sqe& sqe) noexcept { prep_fsync(sqe, f); });
    }
    /// fdatasync(2): data, and only the metadata needed to read it back.
    [[nodiscard]] auto fdatasync() const noexcept {
        return file_op<false>("fdatasync", path(), [f = ref()](io_uring_sqe& sqe) noexcept {
            prep_fsync(sqe, f, fsync_datasync);
        });
    }
    /// sync_file_range(2) with SYNC_FILE_RANGE_* `flags` (`length` 0: to the end of file).
    [[nodiscard]] auto sync_file_range(std::uint64_t offset, std::uint32_t length,
                                       unsigned flags) const noexcept {
        return file_op<false>("sync_file_range", path(),
                              [f = ref(), offset, length, flags](io_uring_sqe& sqe) noexcept {
                                  prep_sync_file_range(sqe, f, offset, length, flags);
                              });
    }
    /// fallocate(2): `mode` 0 allocates (and extends), FALLOC_FL_PUNCH_HOLE |
    /// FALLOC_FL_KEEP_SIZE makes a hole, FALLOC_FL_KEEP_SIZE allocates past the end...
    [[nodiscard]] auto fallocate(std::uint64_t offset, std::uint64_t length,
                                 int mode = 0) const noexcept {
        return file_op<false>("fallocate", path(),
                              [f = ref(), offset, length, mode](io_uring_sqe& sqe) noexcept {
                                  prep_fallocate(sqe, f, mode, offset, length);
                              });
    }
    /// posix_fadvise(2) with POSIX_FADV_* `advice` (`length` 0: to the end of file).
    [[nodiscard]] auto fadvise(std::uint64_t offset, std::uint32_t length,
                               int advice) const noexcept {
        return file_op<false>("fadvise", path(),
                              [f = ref(), offset, length, advice](io_uring_sqe& sqe) noexcept {
                                  prep_fadvise(sqe, f, offset, length, advice);
                              });
    }

    /// ftruncate(2) through IORING_OP_FTRUNCATE (Linux 6.9). On an older kernel it throws
    /// tram::error with EOPNOTSUPP naming the missing op, without a system call: tram never
    /// runs a blocking ftruncate(2) on the loop thread.
    [[nodiscard]] truncate_operation truncate(std::uint64_t length) const noexcept {
        return {ref(), length, path()};
    }

    /// The registered-file handle or descriptor that SQEs name.
    [[nodiscard]] file_ref ref() const noexcept { return derived().ref_impl(); }
    /// The path the file was opened with (as given, relative to its directory).
    [[nodiscard]] const std::string& path() const noexcept { return derived().path_; }

protected:
    basic_file() noexcept = default;

private:
    [[nodiscard]] const Derived& derived() const noexcept {
        return static_cast<const Derived&>(*this);
    }

    template <typename Buffer>
    task<> read_exact_impl(Buffer buf, std::uint64_t offset) const {
        std::size_t done = 0;
        while (done < buf.size()) {
            const std::size_t n = co_await read(buf.subspan(done), offset);
            if (n == 0) throw_end_of_file("read_exact", path(), done, buf.size());
            done += n;
            if (offset != current_position) offset += n;
        }
    }
    template <typename Buffer>
    task<> write_all_impl(Buffer buf, std::uint64_t offset) const {
        std::size_t done = 0;
        while (done < buf.size()) {
            const std::size_t n = co_await write(buf.subspan(done), offset);
            // A write of a positive count that moves nothing would loop for ever.
            if (n == 0) throw_file_error(EIO, "write_all", path());
            done += n;
            if (offset != current_position) offset += n;
        }
    }
};

/// IORING_OP_OPENAT or _OPENAT2, into a plain descriptor (`Result` = file) or a slot of the
/// registered file table (`Result` = direct_file). The path lives here until the CQE.
template <typename Result>
class open_operation final : public checked_awaiter<open_operation<Result>> {
public:
    open_operation(int dirfd, std::string path, const open_how& how, bool openat2,
                   unsigned slot) noexcept
        : dirfd_(dirfd)
        , path_(std::move(path))
        , how_(how)
        , openat2_(openat2)
        , slot_(slot) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        if (openat2_) {
            prep_openat2(sqe, dirfd_, path_.c_str(), &how_);
        } else {
            prep_openat(sqe, dirfd_, path_.c_str(), static_cast<int>(how_.flags),
                        static_cast<mode_t>(how_.mode));
        }
        if constexpr (Result::is_direct) detail::set_target_slot(sqe, slot_);
    }
    [[noreturn]] void fail(int errnum) const { throw_file_error(errnum, "open", path_); }
    [[nodiscard]] Result value_of(io_result r) {
        if constexpr (Result::is_direct) {
            const unsigned slot = slot_ == alloc_file_index ? r.value() : slot_;
            return Result(this->driver(), slot, std::move(path_));
        } else {
            return Result::adopt(r.raw(), std::move(path_));
        }
    }

private:
    int dirfd_;
    std::string path_;
    open_how how_;
    bool openat2_;
    unsigned slot_;
};

/// IORING_OP_FILES_UPDATE of one slot with an open descriptor (gives a direct_file).
class register_operation final : public checked_awaiter<register_operation> {
public:
    register_operation(int fd, unsigned slot, const std::string& path) noexcept
        : fds_{fd}
        , slot_(slot)
        , path_(&path) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        // With IORING_FILE_INDEX_ALLOC the kernel picks the slot and writes it into fds_.
        prep_files_update(sqe, fds_, static_cast<int>(slot_));
    }
    [[noreturn]] void fail(int errnum) const { throw_file_error(errnum, "register", *path_); }
    [[nodiscard]] direct_file value_of(io_result r) const;

private:
    int fds_[1];
    unsigned slot_;
    const std::string* path_;
};

/// IORING_OP_GETXATTR, _SETXATTR (of a path) or _FGETXATTR, _FSETXATTR (of an open file).
/// Gives the value's length for a get, 0 for a set.
class xattr_operation final : public checked_awaiter<xattr_operation> {
public:
    /// Of an open file; `shown` names it in errors (null: "fd N").
    xattr_operation(bool set, file_ref file, const std::string* shown, std::string name,
                    std::span<const char> value, int flags) noexcept
        : file_(file)
        , shown_(shown)
        , name_(std::move(name))
        , value_(value)
        , flags_(flags)
        , set_(set)
        , by_fd_(true) {}
    /// Of a path (relative to the working directory: the kernel's op has no dirfd).
    xattr_operation(bool set, std::string path, std::string name, std::span<const char> value,
                    int flags) noexcept
        : path_(std::move(path))
        , name_(std::move(name))
        , value_(value)
        , flags_(flags)
        , set_(set) {}

    void prepare(io_uring_sqe& sqe) noexcept;
    [[noreturn]] void fail(int errnum) const;
    [[nodiscard]] std::size_t value_of(io_result r) const noexcept { return r.value(); }

private:
    file_ref file_{-1};
    const std::string* shown_ = nullptr;
    std::string path_;
    std::string name_;
    std::span<const char> value_;
    int flags_;
    bool set_;
    bool by_fd_ = false;
};

} // namespace detail

/// An open file that owns its descriptor. `co_await file::open(path, O_RDONLY)`; every
/// operation is one SQE through the current driver, and failures throw tram::error naming the
/// operation and the path. The destructor closes through the ring without waiting (see
/// `descriptor`); `co_await f.close()` reports the close's errors.
class file : public detail::basic_file<file> {
public:
    static constexpr bool is_direct = false;

    file() noexcept = default;

    /// Opens `path` (relative to `dirfd`) with open(2) `flags` and, when it creates the file,
    /// `mode`. O_CLOEXEC is always added.
    [[nodiscard]] static detail::open_operation<file> open(std::string path, int flags = O_RDONLY,
                                                           mode_t mode = 0644,
                                                           int dirfd = AT_FDCWD) noexcept {
        return {dirfd, std::move(path), open_how_of(flags, mode), false, 0};
    }
    /// openat2(2): `how.resolve` restricts the lookup (RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS...).
    [[nodiscard]] static detail::open_operation<file> open(std::string path, const open_how& how,
                                                           int dirfd = AT_FDCWD) noexcept {
        open_how with_cloexec = how;
        with_cloexec.flags |= O_CLOEXEC;
        return {dirfd, std::move(path), with_cloexec, true, 0};
    }
    /// Creates (or truncates) `path` for reading and writing: O_RDWR | O_CREAT | O_TRUNC.
    [[nodiscard]] static detail::open_operation<file> create(std::string path, mode_t mode = 0644,
                                                             int dirfd = AT_FDCWD) noexcept {
        return open(std::move(path), O_RDWR | O_CREAT | O_TRUNC, mode, dirfd);
    }
    /// Opens `path` straight into slot `slot` of the driver's registered file table (or a slot
    /// the kernel picks): no descriptor is ever installed in the process. The table must exist
    /// (`registrar::register_files_sparse`).
    [[nodiscard]] static detail::open_operation<direct_file>
    open_direct(std::string path, int flags = O_RDONLY, mode_t mode = 0644,
                unsigned slot = alloc_file_index, int dirfd = AT_FDCWD) noexcept;

    /// Takes ownership of `fd` (a pipe end, a FIFO...); `path` names it in error messages.
    [[nodiscard]] static file adopt(int fd, std::string path = {}) noexcept {
        file f;
        f.fd_ = descriptor(fd);
        f.path_ = std::move(path);
        return f;
    }

    [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
    [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
    /// Gives up ownership of the descriptor without closing it.
    [[nodiscard]] int release() noexcept { return fd_.release(); }

    /// statx(2) of the open file.
    [[nodiscard]] detail::statx_operation stat() const noexcept {
        return {fd(), std::string(), AT_EMPTY_PATH, &path_};
    }
    /// fgetxattr(2): reads attribute `name` into `value`; gives the value's length.
    [[nodiscard]] detail::xattr_operation getxattr(std::string name,
                                                   std::span<char> value) const noexcept {
        return {false, fd(), &path_, std::move(name), value, 0};
    }
    /// fsetxattr(2) with XATTR_CREATE / XATTR_REPLACE `flags`.
    [[nodiscard]] detail::xattr_operation setxattr(std::string name, std::span<const char> value,
                                                   int flags = 0) const noexcept {
        return {true, fd(), &path_, std::move(name), value, flags};
    }

    /// Installs the descriptor in slot `slot` of the driver's registered file table (or one
    /// the kernel picks), through IORING_OP_FILES_UPDATE; gives a direct_file owning the slot.
    /// The kernel holds its own reference: this file stays open and independent.
    [[nodiscard]] detail::register_operation
    register_direct(unsigned slot = alloc_file_index) const noexcept {
        return {fd(), slot, path_};
    }

    /// Closes through the ring and reports errors; the file counts as closed from the moment
    /// this is called (a later operation fails with EBADF).
    [[nodiscard]] auto close() noexcept {
        return detail::file_op<false>(
            "close", path_,
            [fd = fd_.release()](io_uring_sqe& sqe) noexcept { prep_close(sqe, fd); });
    }

private:
    friend class detail::basic_file<file>;
    static open_how open_how_of(int flags, mode_t mode) noexcept {
        open_how how{};
        how.flags = static_cast<std::uint64_t>(static_cast<unsigned>(flags | O_CLOEXEC));
        how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
        return how;
    }
    [[nodiscard]] file_ref ref_impl() const noexcept { return fd_.fd(); }

    descriptor fd_;
    std::string path_;
};

/// A file in a slot of the driver's registered (fixed) file table: its ops set
/// IOSQE_FIXED_FILE, which spares the kernel the descriptor lookup and reference count of each
/// op. Made by `file::open_direct` or `file::register_direct`; owns its slot. The destructor
/// closes the slot through the ring without waiting, when it runs on its driver's thread
/// (elsewhere, or once the driver shuts down, the slot goes with the ring's table). It must
/// not outlive its driver.
class direct_file : public detail::basic_file<direct_file> {
public:
    static constexpr bool is_direct = true;

    direct_file() noexcept = default;
    direct_file(driver& owner, unsigned slot, std::string path) noexcept
        : slot_(owner, slot)
        , path_(std::move(path)) {}

    [[nodiscard]] bool is_open() const noexcept { return slot_.is_open(); }
    /// The slot, for prep functions and other ops (`splice`, `copy`).
    [[nodiscard]] registered_fd slot() const noexcept { return slot_.get(); }

    /// Closes the slot through the ring (IORING_OP_CLOSE with file_index) and reports errors.
    [[nodiscard]] auto close() noexcept {
        return detail::file_op<false>(
            "close", path_,
            [slot = slot_.release()](io_uring_sqe& sqe) noexcept { prep_close_slot(sqe, slot); });
    }
    /// Closes without waiting (see the class comment).
    void reset() noexcept { slot_.reset(); }

private:
    friend class detail::basic_file<direct_file>;
    [[nodiscard]] file_ref ref_impl() const noexcept { return slot_.get(); }

    direct_slot slot_;
    std::string path_;
};

inline detail::open_operation<direct_file>
file::open_direct(std::string path, int flags, mode_t mode, unsigned slot, int dirfd) noexcept {
    // No O_CLOEXEC: a direct descriptor is no descriptor of the process, and the kernel
    // refuses the flag with a slot (EINVAL).
    open_how how{};
    how.flags = static_cast<std::uint64_t>(static_cast<unsigned>(flags));
    how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
    return {dirfd, std::move(path), how, false, slot};
}

inline direct_file detail::register_operation::value_of(io_result) const {
    const unsigned slot = slot_ == alloc_file_index ? static_cast<unsigned>(fds_[0]) : slot_;
    return {this->driver(), slot, *path_};
}

} // namespace tram
