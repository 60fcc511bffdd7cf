// Bytes received into a provided buffer, owned until released back to its buffer ring.
#pragma once

#include <tram/buffer_ring.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace tram {

/// Bytes received into a buffer of a `buffer_ring`. The buffer belongs to the holder until the
/// chunk is destroyed (or `release()`d), which gives it back to the ring for the kernel to fill
/// again: keep chunks only as long as needed, or the ring runs dry.
class recv_chunk {
public:
    recv_chunk() noexcept = default;
    recv_chunk(buffer_ring& ring, std::uint16_t id, std::uint32_t size) noexcept
        : ring_(&ring)
        , id_(id)
        , size_(size) {}
    recv_chunk(recv_chunk&& other) noexcept
        : ring_(std::exchange(other.ring_, nullptr))
        , id_(other.id_)
        , size_(other.size_) {}
    recv_chunk& operator=(recv_chunk&& other) noexcept {
        if (this != &other) {
            release();
            ring_ = std::exchange(other.ring_, nullptr);
            id_ = other.id_;
            size_ = other.size_;
        }
        return *this;
    }
    ~recv_chunk() { release(); }

    /// The bytes received.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
        return ring_ != nullptr ? ring_->data(id_, size_) : std::span<const std::byte>{};
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::uint16_t buffer_id() const noexcept { return id_; }
    /// Gives the buffer back to the ring now.
    void release() noexcept {
        if (ring_ != nullptr) std::exchange(ring_, nullptr)->recycle(id_);
    }

private:
    buffer_ring* ring_ = nullptr;
    std::uint16_t id_ = 0;
    std::uint32_t size_ = 0;
};

} // namespace tram
