// Moving bytes between descriptors inside the kernel: splice, tee, and `copy` (send-file)
// built on splice through a pipe.
#pragma once

#include <tram/file.hpp>

#include <fcntl.h>

#include <cstdint>
#include <string>

namespace tram {
namespace detail {

/// IORING_OP_SPLICE or _TEE; gives the count moved. Errors name both ends ("fd 3 -> fd 7").
class splice_operation final : public checked_awaiter<splice_operation> {
public:
    splice_operation(bool tee, file_ref in, std::int64_t in_offset, file_ref out,
                     std::int64_t out_offset, std::uint32_t count, unsigned flags) noexcept
        : in_(in)
        , out_(out)
        , in_offset_(in_offset)
        , out_offset_(out_offset)
        , count_(count)
        , flags_(flags)
        , tee_(tee) {}

    void prepare(io_uring_sqe& sqe) noexcept {
        if (tee_) {
            prep_tee(sqe, in_, out_, count_, flags_);
        } else {
            prep_splice(sqe, in_, in_offset_, out_, out_offset_, count_, flags_);
        }
    }
    [[noreturn]] void fail(int errnum) const;
    [[nodiscard]] std::size_t value_of(io_result r) const noexcept { return r.value(); }

private:
    file_ref in_;
    file_ref out_;
    std::int64_t in_offset_;
    std::int64_t out_offset_;
    std::uint32_t count_;
    unsigned flags_;
    bool tee_;
};

/// "fd 7" or "fixed file 2", for messages.
[[nodiscard]] std::string describe(file_ref file);

/// The loop behind `copy`: `in_name` names the source in errors.
task<std::uint64_t> copy_through_pipe(file_ref in, const std::string& in_name,
                                      std::int64_t in_offset, file_ref out, std::uint64_t count);

} // namespace detail

/// splice(2): moves up to `count` bytes from `in` to `out`, one of which must be a pipe. An
/// offset applies to a non-pipe end (`no_offset`: its file position, or none for a socket).
/// Gives the count moved, 0 when `in` is at end of file (or a pipe with no writer left).
[[nodiscard]] inline detail::splice_operation splice(file_ref in, std::int64_t in_offset,
                                                     file_ref out, std::int64_t out_offset,
                                                     std::uint32_t count,
                                                     unsigned flags = 0) noexcept {
    return {false, in, in_offset, out, out_offset, count, flags};
}
/// splice(2) at the file positions (or between pipes and sockets).
[[nodiscard]] inline detail::splice_operation splice(file_ref in, file_ref out, std::uint32_t count,
                                                     unsigned flags = 0) noexcept {
    return splice(in, no_offset, out, no_offset, count, flags);
}

/// tee(2): duplicates up to `count` bytes from pipe `in` into pipe `out` without consuming
/// them from `in`. Gives the count duplicated, 0 when `in` is empty with no writer left.
[[nodiscard]] inline detail::splice_operation tee(file_ref in, file_ref out, std::uint32_t count,
                                                  unsigned flags = 0) noexcept {
    return {true, in, no_offset, out, no_offset, count, flags};
}

/// "Until end of file", for `copy`.
inline constexpr std::uint64_t until_eof = ~std::uint64_t{0};

/// Copies `count` bytes (or until end of file) from `in` to `out` (a file, socket or pipe, at
/// its position) inside the kernel, by splice through a pipe: two SQEs per pipeful (1 MiB
/// where the pipe limit allows, else 64 KiB). `in_offset` `no_offset` reads from and advances
/// `in`'s position. Gives the count copied: less than `count` only when `in` ended first,
/// which is no error. Failures throw tram::error "copy PATH -> fd N: ...". The pipe comes from
/// pipe2(2) on the loop thread (it never blocks) and is closed through the ring.
[[nodiscard]] inline task<std::uint64_t> copy(const file& in, file_ref out,
                                              std::uint64_t count = until_eof,
                                              std::int64_t in_offset = no_offset) {
    return detail::copy_through_pipe(in.ref(), in.path(), in_offset, out, count);
}
/// `copy` from a registered file.
[[nodiscard]] inline task<std::uint64_t> copy(const direct_file& in, file_ref out,
                                              std::uint64_t count = until_eof,
                                              std::int64_t in_offset = no_offset) {
    return detail::copy_through_pipe(in.ref(), in.path(), in_offset, out, count);
}

} // namespace tram
