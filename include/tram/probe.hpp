// Which operations the running kernel supports (IORING_REGISTER_PROBE, 5.6).
#pragma once

#include <tram/opcode.hpp>

#include <bitset>
#include <string>
#include <string_view>
#include <vector>

namespace tram {

class ring;

/// The set of ops the kernel supports, as IORING_REGISTER_PROBE reports it.
class probe {
public:
    /// Probes through an existing ring. Throws tram::error if the kernel cannot probe.
    explicit probe(ring& r);
    /// Probes through a small ring set up for the purpose.
    [[nodiscard]] static probe of_kernel();

    [[nodiscard]] bool supports(opcode op) const noexcept {
        return static_cast<unsigned>(op) < supported_.size() &&
               supported_[static_cast<unsigned>(op)];
    }
    /// The highest op number the kernel knows (it may know ops tram has no name for).
    [[nodiscard]] unsigned last_op() const noexcept { return last_op_; }
    /// The supported ops that tram has names for, in numeric order.
    [[nodiscard]] std::vector<opcode> supported() const;

private:
    std::bitset<256> supported_;
    unsigned last_op_ = 0;
};

/// The first kernel version that has `op` ("6.11"), for messages.
[[nodiscard]] std::string_view first_kernel_with(opcode op) noexcept;

/// "IORING_OP_BIND is not supported by this kernel (it needs Linux 6.11 or later)".
[[nodiscard]] std::string unsupported_op_message(opcode op);

} // namespace tram
