// A completion queue entry, copied out of the ring by value.
#pragma once

#include <tram/uapi.hpp>

#include <array>
#include <cstdint>
#include <optional>

namespace tram {

/// A CQE copied out of the CQ ring. Copying (24 or 40 bytes) lets the ring slot be handed back
/// to the kernel at once, so nothing here can point into memory the kernel may reuse.
struct completion {
    std::uint64_t user_data = 0;
    /// The operation's result: a count or value when >= 0, a negated errno when < 0.
    std::int32_t result = 0;
    std::uint32_t flags = 0;
    /// The two extra words of a 32-byte CQE (rings set up with CQE32); zero otherwise.
    std::array<std::uint64_t, 2> extra{};

    /// More CQEs will follow for the same SQE (a multishot op that is still armed).
    [[nodiscard]] constexpr bool more() const noexcept { return flags & IORING_CQE_F_MORE; }
    /// The socket had more data to read when this recv completed.
    [[nodiscard]] constexpr bool sock_nonempty() const noexcept {
        return flags & IORING_CQE_F_SOCK_NONEMPTY;
    }
    /// This is the zero-copy notification of a SEND_ZC (the buffer may be reused now).
    [[nodiscard]] constexpr bool notification() const noexcept {
        return flags & IORING_CQE_F_NOTIF;
    }
    /// An incrementally consumed provided buffer (6.12+) still has room for more data.
    [[nodiscard]] constexpr bool buffer_more() const noexcept {
        return flags & uapi::cqe_f_buf_more;
    }
    /// The id of the provided buffer the kernel picked, when it picked one.
    [[nodiscard]] constexpr std::optional<std::uint16_t> buffer_id() const noexcept {
        if (!(flags & IORING_CQE_F_BUFFER)) return std::nullopt;
        return static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    }
    [[nodiscard]] constexpr bool ok() const noexcept { return result >= 0; }
    /// The errno of a failed operation, 0 when it succeeded.
    [[nodiscard]] constexpr int error() const noexcept { return result < 0 ? -result : 0; }
};

} // namespace tram
