// The out-of-line parts of files: error messages (built only when throwing), the kernel probe,
// direct_file's detached close.
#include <tram/file.hpp>

#include <tram/error.hpp>
#include <tram/probe.hpp>

#include <sys/xattr.h>

#include <optional>
#include <string>

namespace tram {
namespace detail {

void throw_file_error(int errnum, std::string_view operation, std::string_view subject) {
    std::string what(operation);
    if (!subject.empty()) {
        what += ' ';
        what += subject;
    }
    throw_error(errnum, what);
}

void throw_end_of_file(std::string_view operation, std::string_view path, std::uint64_t done,
                       std::uint64_t wanted) {
    std::string what(operation);
    if (!path.empty()) {
        what += ' ';
        what += path;
    }
    throw_error(ENODATA, what,
                "end of file after " + std::to_string(done) + " of " + std::to_string(wanted) +
                    " bytes");
}

void throw_unsupported(opcode op, std::string_view operation, std::string_view subject) {
    std::string what(operation);
    if (!subject.empty()) {
        what += ' ';
        what += subject;
    }
    throw_error(EOPNOTSUPP, what, unsupported_op_message(op));
}

bool kernel_supports(opcode op) noexcept {
    // The kernel does not change under a running process: one probe serves every driver.
    static const std::optional<probe> kernel = []() noexcept -> std::optional<probe> {
        try {
            return probe::of_kernel();
        } catch (...) {
            return std::nullopt;
        }
    }();
    return !kernel || kernel->supports(op);
}

void xattr_operation::prepare(io_uring_sqe& sqe) noexcept {
    // The get ops write into value_: it came in as a writable span (see the callers).
    const std::span<char> writable(const_cast<char*>(value_.data()), value_.size());
    if (by_fd_) {
        if (set_) {
            prep_fsetxattr(sqe, file_, name_.c_str(), value_, flags_);
        } else {
            prep_fgetxattr(sqe, file_, name_.c_str(), writable);
        }
    } else if (set_) {
        prep_setxattr(sqe, path_.c_str(), name_.c_str(), value_, flags_);
    } else {
        prep_getxattr(sqe, path_.c_str(), name_.c_str(), writable);
    }
}

void xattr_operation::fail(int errnum) const {
    std::string subject;
    if (shown_ != nullptr) {
        subject = *shown_;
    } else if (by_fd_) {
        subject = (file_.fixed() ? "fixed file " : "fd ") + std::to_string(file_.value());
    } else {
        subject = path_;
    }
    subject += ' ';
    subject += name_;
    throw_file_error(errnum, set_ ? "setxattr" : "getxattr", subject);
}

} // namespace detail

} // namespace tram
