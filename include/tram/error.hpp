// How the ring layer reports failures.
//
// Calls that can fail only through misuse or a missing kernel feature (setup, registration,
// mmap) throw `tram::error`. Calls on the hot path (submit, wait) return a negative errno, as
// the kernel does, because EINTR, EAGAIN and EBUSY there are expected conditions, not errors.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace tram {

/// An error from the kernel, with a message that names the operation and the cause, e.g.
/// "io_uring_setup: io_uring is disabled by the kernel.io_uring_disabled sysctl or a
/// sandbox (EPERM)". `code()` holds the errno in `std::system_category()`.
class error : public std::system_error {
public:
    error(int errnum, const std::string& message)
        : std::system_error(errnum, std::system_category()), message_(message) {}

    /// The message as given: std::system_error's own would append strerror a second time.
    [[nodiscard]] const char* what() const noexcept override { return message_.what(); }
    /// The errno value.
    [[nodiscard]] int errnum() const noexcept { return code().value(); }

private:
    // A runtime_error only for its reference-counted string, whose copy cannot throw.
    std::runtime_error message_;
};

/// The symbolic name of an errno value ("ECONNREFUSED"), or "E?" for one tram has no name for.
[[nodiscard]] std::string_view errno_name(int errnum) noexcept;

/// "operation: detail (ENAME)" or, with no detail, "operation: strerror text (ENAME)".
[[nodiscard]] std::string describe_error(int errnum, std::string_view operation,
                                         std::string_view detail = {});

/// Throws `tram::error` with `describe_error(errnum, operation, detail)`.
[[noreturn]] void throw_error(int errnum, std::string_view operation,
                              std::string_view detail = {});

} // namespace tram
