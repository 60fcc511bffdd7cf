// splice/tee error messages, and `copy` through a pipe.
#include <tram/splice.hpp>

#include <tram/error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace tram::detail {

std::string describe(file_ref file) {
    return (file.fixed() ? "fixed file " : "fd ") + std::to_string(file.value());
}

void splice_operation::fail(int errnum) const {
    throw_file_error(errnum, tee_ ? "tee" : "splice", describe(in_) + " -> " + describe(out_));
}

namespace {

// What fits in one pipe: each splice into the (empty) pipe moves at most this much.
std::uint32_t enlarge_pipe(int write_end) noexcept {
    // 1 MiB is the default /proc/sys/fs/pipe-max-size; a refusal leaves the pipe as it was.
    (void)::fcntl(write_end, F_SETPIPE_SZ, 1 << 20);
    const int size = ::fcntl(write_end, F_GETPIPE_SZ);
    return size > 0 ? static_cast<std::uint32_t>(size) : 65536U;
}

} // namespace

task<std::uint64_t> copy_through_pipe(file_ref in, const std::string& in_name,
                                      std::int64_t in_offset, file_ref out, std::uint64_t count) {
    const auto fail = [&](int errnum) {
        throw_file_error(errnum, "copy", in_name + " -> " + describe(out));
    };
    if (count == 0) co_return 0;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail(errno);
    descriptor read_end(fds[0]);
    descriptor write_end(fds[1]);
    const std::uint32_t pipe_size = enlarge_pipe(fds[1]);

    std::uint64_t done = 0;
    while (done < count) {
        const auto want =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(count - done, pipe_size));
        const io_result filled = co_await make_operation([&](io_uring_sqe& sqe) noexcept {
            prep_splice(sqe, in, in_offset, write_end.fd(), no_offset, want);
        });
        if (!filled) fail(filled.error());
        if (filled.value() == 0) break; // end of file
        std::uint32_t left = filled.value();
        while (left > 0) {
            const io_result drained = co_await make_operation([&](io_uring_sqe& sqe) noexcept {
                prep_splice(sqe, read_end.fd(), no_offset, out, no_offset, left);
            });
            if (!drained) fail(drained.error());
            // Moving nothing from a full pipe would loop for ever.
            if (drained.value() == 0) fail(EIO);
            left -= drained.value();
        }
        done += filled.value();
        if (in_offset != no_offset) in_offset += filled.value();
    }
    co_return done;
}

} // namespace tram::detail
