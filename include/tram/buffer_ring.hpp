// Ring-mapped provided buffers (IORING_REGISTER_PBUF_RING, 5.19).
#pragma once

#include <tram/mapping.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

struct io_uring_buf_ring;

namespace tram {

class ring;

/// A provided-buffer ring of group `group_id`: buffers the application hands to the kernel,
/// from which ops with buffer selection (recv, read, multishot recv) pick one each time they
/// complete. The id of the buffer picked comes back in the CQE (`completion::buffer_id`).
///
/// This class owns the ring of buffer descriptors and the buffers themselves (`count` buffers
/// of `buffer_size` bytes, in one mapping). Initially every buffer is in the ring; a buffer the
/// kernel filled belongs to the application until `recycle` gives it back. When none is left,
/// ops fail with -ENOBUFS (and multishot ops end).
///
/// The tail is ours: it is stored with release semantics so that the descriptors written
/// before it are visible to the kernel, which loads it with acquire.
class buffer_ring {
public:
    /// Registers the ring with `r`. `count` must be a power of two, at most 32768.
    buffer_ring(ring& r, std::uint16_t group_id, unsigned count, std::size_t buffer_size);
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;
    /// Unregisters the ring. Ops still using the group must have completed.
    ~buffer_ring();

    [[nodiscard]] std::uint16_t group_id() const noexcept { return group_id_; }
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return buffer_size_; }

    /// The whole of buffer `id`.
    [[nodiscard]] std::span<std::byte> buffer(std::uint16_t id) const noexcept {
        return {buffers_.data() + std::size_t{id} * buffer_size_, buffer_size_};
    }
    /// The first `length` bytes of buffer `id`: what a completion with that buffer id and
    /// result `length` delivered.
    [[nodiscard]] std::span<std::byte> data(std::uint16_t id, std::size_t length) const noexcept {
        return buffer(id).first(length);
    }

    /// Gives buffer `id` back to the kernel at once.
    void recycle(std::uint16_t id) noexcept {
        stage(id);
        publish();
    }
    /// Stages buffer `id` for return without publishing it yet (batch several, then `publish`).
    void stage(std::uint16_t id) noexcept;
    /// Makes the staged buffers visible to the kernel.
    void publish() noexcept;

private:
    ring* ring_;
    std::uint16_t group_id_;
    unsigned count_;
    std::size_t buffer_size_;
    mapping ring_memory_;
    mapping buffers_;
    io_uring_buf_ring* br_ = nullptr;
    std::uint16_t tail_ = 0; // local tail, published by `publish`
};

} // namespace tram
