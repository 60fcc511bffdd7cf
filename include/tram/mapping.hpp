// Ownership of a memory mapping.
#pragma once

#include <cstddef>
#include <utility>

namespace tram {

/// Owns an mmap(2)ed region and unmaps it when destroyed.
class mapping {
public:
    constexpr mapping() noexcept = default;
    mapping(void* addr, std::size_t size) noexcept : addr_(addr), size_(size) {}
    mapping(mapping&& o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    mapping& operator=(mapping&& o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~mapping() { reset(); }

    /// Maps `size` bytes of `fd` at `offset`, shared and pre-faulted, for reading and writing.
    /// Throws tram::error naming `what` on failure.
    [[nodiscard]] static mapping map_shared(int fd, std::size_t size, unsigned long long offset,
                                            const char* what);
    /// Maps `size` bytes of anonymous, page-aligned, zeroed memory.
    [[nodiscard]] static mapping map_anonymous(std::size_t size, const char* what);

    [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(addr_); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] explicit operator bool() const noexcept { return addr_ != nullptr; }
    void reset() noexcept;

private:
    void* addr_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace tram
