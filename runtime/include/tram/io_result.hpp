// The outcome of one io_uring operation, as an awaitable I/O operation returns it.
#pragma once

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace tram {

/// The result of an operation's CQE: a non-negative value (a byte count, a descriptor...) or
/// a negated errno. Expected conditions are ordinary values here, never exceptions:
/// `cancelled()` after a stop request (ECANCELED), `timed_out()` after a timeout set with
/// `with_timeout` (ETIME), and EOF as a value of 0.
class io_result {
public:
    constexpr io_result() noexcept = default;
    constexpr explicit io_result(std::int32_t result, std::uint32_t cqe_flags = 0) noexcept
        : result_(result), flags_(cqe_flags) {}

    [[nodiscard]] constexpr bool ok() const noexcept { return result_ >= 0; }
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return ok(); }
    /// The value of a successful operation (precondition: `ok()`).
    [[nodiscard]] constexpr std::uint32_t value() const noexcept {
        return static_cast<std::uint32_t>(result_);
    }
    /// The errno of a failed operation, 0 for a successful one.
    [[nodiscard]] constexpr int error() const noexcept { return result_ < 0 ? -result_ : 0; }
    [[nodiscard]] std::error_code error_code() const noexcept {
        return {error(), std::system_category()};
    }
    [[nodiscard]] constexpr bool cancelled() const noexcept { return result_ == -ECANCELED; }
    [[nodiscard]] constexpr bool timed_out() const noexcept { return result_ == -ETIME; }
    /// The CQE's result as the kernel gave it.
    [[nodiscard]] constexpr std::int32_t raw() const noexcept { return result_; }
    /// The CQE's flags (IORING_CQE_F_*).
    [[nodiscard]] constexpr std::uint32_t flags() const noexcept { return flags_; }

private:
    std::int32_t result_ = 0;
    std::uint32_t flags_ = 0;
};

} // namespace tram
