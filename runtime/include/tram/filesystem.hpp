// File system operations through the ring: unlink, rmdir, mkdir, rename, link, symlink, stat,
// extended attributes. Each is one SQE; paths are relative to a directory descriptor
// (AT_FDCWD: the working directory) and are kept in the awaiter until the CQE. Failures throw
// tram::error naming the operation and the path(s): "rename /d/a -> /d/b: ... (ENOENT)".
#pragma once

#include <tram/file.hpp>

#include <fcntl.h>
#include <sys/types.h>
#include <sys/xattr.h> // XATTR_CREATE, XATTR_REPLACE

#include <cstddef>
#include <span>
#include <string>
#include <utility>

namespace tram {
namespace detail {

/// An op on one or two paths, prepared by `prep(sqe, first, second)`.
template <typename Prep>
class path_operation final : public checked_awaiter<path_operation<Prep>> {
public:
    path_operation(const char* operation, Prep prep, std::string first, std::string second) noexcept
        : prep_(std::move(prep))
        , operation_(operation)
        , first_(std::move(first))
        , second_(std::move(second))
        , two_paths_(true) {}
    path_operation(const char* operation, Prep prep, std::string first) noexcept
        : prep_(std::move(prep))
        , operation_(operation)
        , first_(std::move(first)) {}

    void prepare(io_uring_sqe& sqe) noexcept { prep_(sqe, first_.c_str(), second_.c_str()); }
    [[noreturn]] void fail(int errnum) const {
        throw_file_error(errnum, operation_, two_paths_ ? first_ + " -> " + second_ : first_);
    }
    void value_of(io_result) const noexcept {}

private:
    Prep prep_;
    const char* operation_;
    std::string first_;
    std::string second_;
    bool two_paths_ = false;
};

template <typename Prep, typename... Paths>
[[nodiscard]] path_operation<Prep> path_op(const char* operation, Prep prep,
                                           Paths&&... paths) noexcept {
    return {operation, std::move(prep), std::forward<Paths>(paths)...};
}

} // namespace detail

namespace fs {

/// unlinkat(2) of a file (not a directory: see `rmdir`).
[[nodiscard]] inline auto unlink(std::string path, int dirfd = AT_FDCWD) noexcept {
    return detail::path_op(
        "unlink",
        [dirfd](io_uring_sqe& sqe, const char* p, const char*) noexcept {
            prep_unlinkat(sqe, dirfd, p);
        },
        std::move(path));
}

/// unlinkat(2) with AT_REMOVEDIR: removes an empty directory.
[[nodiscard]] inline auto rmdir(std::string path, int dirfd = AT_FDCWD) noexcept {
    return detail::path_op(
        "rmdir",
        [dirfd](io_uring_sqe& sqe, const char* p, const char*) noexcept {
            prep_unlinkat(sqe, dirfd, p, AT_REMOVEDIR);
        },
        std::move(path));
}

/// mkdirat(2).
[[nodiscard]] inline auto mkdir(std::string path, mode_t mode = 0777,
                                int dirfd = AT_FDCWD) noexcept {
    return detail::path_op(
        "mkdir",
        [dirfd, mode](io_uring_sqe& sqe, const char* p, const char*) noexcept {
            prep_mkdirat(sqe, dirfd, p, mode);
        },
        std::move(path));
}

/// renameat2(2) from `from_dirfd`/`from` to `to_dirfd`/`to`; `flags`: RENAME_NOREPLACE,
/// RENAME_EXCHANGE, RENAME_WHITEOUT.
[[nodiscard]] inline auto rename(int from_dirfd, std::string from, int to_dirfd, std::string to,
                                 unsigned flags = 0) noexcept {
    return detail::path_op(
        "rename",
        [from_dirfd, to_dirfd, flags](io_uring_sqe& sqe, const char* a, const char* b) noexcept {
            prep_renameat(sqe, from_dirfd, a, to_dirfd, b, flags);
        },
        std::move(from), std::move(to));
}
/// renameat2(2) within one directory (`dirfd`).
[[nodiscard]] inline auto rename(std::string from, std::string to, int dirfd = AT_FDCWD,
                                 unsigned flags = 0) noexcept {
    return rename(dirfd, std::move(from), dirfd, std::move(to), flags);
}

/// linkat(2): a new name `to` for the file `from`; `flags`: AT_SYMLINK_FOLLOW.
[[nodiscard]] inline auto link(int from_dirfd, std::string from, int to_dirfd, std::string to,
                               int flags = 0) noexcept {
    return detail::path_op(
        "link",
        [from_dirfd, to_dirfd, flags](io_uring_sqe& sqe, const char* a, const char* b) noexcept {
            prep_linkat(sqe, from_dirfd, a, to_dirfd, b, flags);
        },
        std::move(from), std::move(to));
}
/// linkat(2) within one directory (`dirfd`).
[[nodiscard]] inline auto link(std::string from, std::string to, int dirfd = AT_FDCWD,
                               int flags = 0) noexcept {
    return link(dirfd, std::move(from), dirfd, std::move(to), flags);
}

/// symlinkat(2): creates `link_path` (relative to `dirfd`) pointing at `target`, which is
/// stored as given. Errors read "symlink LINK_PATH -> TARGET".
[[nodiscard]] inline auto symlink(std::string target, std::string link_path,
                                  int dirfd = AT_FDCWD) noexcept {
    return detail::path_op(
        "symlink",
        [dirfd](io_uring_sqe& sqe, const char* link, const char* to) noexcept {
            prep_symlinkat(sqe, to, dirfd, link);
        },
        std::move(link_path), std::move(target));
}

/// statx(2) of a path; `flags`: AT_SYMLINK_NOFOLLOW to describe a symlink itself.
[[nodiscard]] inline detail::statx_operation stat(std::string path, int dirfd = AT_FDCWD,
                                                  int flags = 0) noexcept {
    return {dirfd, std::move(path), flags, nullptr};
}

/// getxattr(2) of a path (following symlinks). The kernel's op has no directory descriptor:
/// a relative path is relative to the working directory. Gives the value's length.
[[nodiscard]] inline detail::xattr_operation getxattr(std::string path, std::string name,
                                                      std::span<char> value) noexcept {
    return {false, std::move(path), std::move(name), value, 0};
}
/// setxattr(2) of a path; `flags`: XATTR_CREATE, XATTR_REPLACE.
[[nodiscard]] inline detail::xattr_operation
setxattr(std::string path, std::string name, std::span<const char> value, int flags = 0) noexcept {
    return {true, std::move(path), std::move(name), value, flags};
}
/// fgetxattr(2) of a descriptor (errors name it "fd N"; `file::getxattr` names the path).
[[nodiscard]] inline detail::xattr_operation fgetxattr(file_ref fd, std::string name,
                                                       std::span<char> value) noexcept {
    return {false, fd, nullptr, std::move(name), value, 0};
}
/// fsetxattr(2) of a descriptor.
[[nodiscard]] inline detail::xattr_operation
fsetxattr(file_ref fd, std::string name, std::span<const char> value, int flags = 0) noexcept {
    return {true, fd, nullptr, std::move(name), value, flags};
}

} // namespace fs
} // namespace tram
