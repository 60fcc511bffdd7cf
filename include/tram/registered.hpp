// Typed handles to the ring's registered (fixed) files and buffers.
//
// An op prepared with a handle uses the fixed variant by itself: a `registered_fd` sets
// IOSQE_FIXED_FILE, a `registered_buffer` picks READ_FIXED/WRITE_FIXED and its buffer index.
// A plain int can therefore never be taken for a table index, nor the other way round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tram {

/// A slot in the ring's registered file table.
struct registered_fd {
    unsigned index = 0;
    friend constexpr bool operator==(registered_fd, registered_fd) noexcept = default;
};

/// A registered buffer, or a part of one: the memory and the index of the table slot it
/// belongs to. `subspan` keeps the index, so a read into part of the buffer stays fixed.
class registered_buffer {
public:
    constexpr registered_buffer(std::uint16_t index, std::span<std::byte> memory) noexcept
        : index_(index), memory_(memory) {}

    [[nodiscard]] constexpr std::uint16_t index() const noexcept { return index_; }
    [[nodiscard]] constexpr std::span<std::byte> memory() const noexcept { return memory_; }
    [[nodiscard]] constexpr std::byte* data() const noexcept { return memory_.data(); }
    [[nodiscard]] constexpr std::size_t size() const noexcept { return memory_.size(); }
    [[nodiscard]] constexpr registered_buffer subspan(std::size_t offset,
                                                      std::size_t count = std::dynamic_extent)
        const noexcept {
        return {index_, memory_.subspan(offset, count)};
    }

private:
    std::uint16_t index_;
    std::span<std::byte> memory_;
};

/// The file an op works on: a plain descriptor or a registered one. Converts implicitly from
/// both, so that every prep function takes either.
class file_ref {
public:
    constexpr file_ref(int fd) noexcept : fd_(fd) {}
    constexpr file_ref(registered_fd fd) noexcept : fd_(static_cast<int>(fd.index)), fixed_(true) {}

    [[nodiscard]] constexpr int value() const noexcept { return fd_; }
    [[nodiscard]] constexpr bool fixed() const noexcept { return fixed_; }

private:
    int fd_;
    bool fixed_ = false;
};

} // namespace tram
