// A typed set of bit flags, so that setup flags, features and SQE flags cannot be mixed up.
#pragma once

#include <concepts>
#include <type_traits>

namespace tram {

/// A set of values of the enumeration `Flag`, whose enumerators are single bits.
template <typename Flag>
    requires std::is_enum_v<Flag>
class flag_set {
public:
    using underlying = std::underlying_type_t<Flag>;

    constexpr flag_set() noexcept = default;
    constexpr flag_set(Flag f) noexcept : bits_(static_cast<underlying>(f)) {}

    /// Builds a set from raw kernel bits, keeping bits this version of tram has no name for.
    [[nodiscard]] static constexpr flag_set from_bits(underlying bits) noexcept {
        flag_set s;
        s.bits_ = bits;
        return s;
    }

    [[nodiscard]] constexpr underlying bits() const noexcept { return bits_; }
    [[nodiscard]] constexpr bool contains(Flag f) const noexcept {
        return (bits_ & static_cast<underlying>(f)) == static_cast<underlying>(f);
    }
    [[nodiscard]] constexpr bool contains_all(flag_set other) const noexcept {
        return (bits_ & other.bits_) == other.bits_;
    }
    [[nodiscard]] constexpr bool empty() const noexcept { return bits_ == 0; }

    constexpr flag_set& operator|=(flag_set o) noexcept { return bits_ |= o.bits_, *this; }
    constexpr flag_set& operator&=(flag_set o) noexcept { return bits_ &= o.bits_, *this; }
    constexpr flag_set& remove(flag_set o) noexcept { return bits_ &= ~o.bits_, *this; }

    friend constexpr flag_set operator|(flag_set a, flag_set b) noexcept { return a |= b; }
    friend constexpr flag_set operator&(flag_set a, flag_set b) noexcept { return a &= b; }
    friend constexpr bool operator==(flag_set, flag_set) noexcept = default;

private:
    underlying bits_ = 0;
};

/// Opt-in for `a | b` on the enumerators themselves: specialise to true for a flag enumeration.
template <typename Flag>
inline constexpr bool is_flag_enum = false;

template <typename Flag>
    requires is_flag_enum<Flag>
constexpr flag_set<Flag> operator|(Flag a, Flag b) noexcept {
    return flag_set<Flag>(a) | flag_set<Flag>(b);
}

} // namespace tram
