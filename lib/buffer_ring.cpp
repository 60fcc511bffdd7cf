#include <tram/buffer_ring.hpp>
#include <tram/error.hpp>
#include <tram/ring.hpp>

#include "locked_memory.hpp"

#include <atomic>
#include <bit>
#include <cstddef>
#include <string>

namespace tram {

buffer_ring::buffer_ring(ring& r, std::uint16_t group_id, unsigned count, std::size_t buffer_size)
    : ring_(&r), group_id_(group_id), count_(count), buffer_size_(buffer_size) {
    if (count == 0 || count > 32768 || !std::has_single_bit(count)) {
        throw_error(EINVAL, "buffer_ring", "the number of buffers must be a power of two from 1 to 32768, not " +
                                               std::to_string(count));
    }
    ring_memory_ = mapping::map_anonymous(count * sizeof(io_uring_buf), "a provided-buffer ring");
    buffers_ = mapping::map_anonymous(count * buffer_size, "provided buffers");
    br_ = reinterpret_cast<io_uring_buf_ring*>(ring_memory_.data());

    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
    reg.ring_entries = count;
    reg.bgid = group_id;
    const int res = r.register_raw(IORING_REGISTER_PBUF_RING, &reg, 1);
    if (res == -ENOMEM) {
        // The kernel pins the descriptors (16 bytes a buffer), not the buffers.
        throw_error(
            ENOMEM, "io_uring_register(PBUF_RING)",
            detail::pinning_failure("registering provided-buffer ring " + std::to_string(group_id),
                                    ring_memory_.size()));
    }
    if (res < 0) {
        throw_error(-res, "io_uring_register(PBUF_RING)",
                    "registering provided-buffer ring " + std::to_string(group_id) +
                        (res == -EEXIST ? ": the group id is taken" : ""));
    }
    for (unsigned id = 0; id < count; ++id) stage(static_cast<std::uint16_t>(id));
    publish();
}

buffer_ring::~buffer_ring() {
    io_uring_buf_reg reg{};
    reg.bgid = group_id_;
    (void)ring_->register_raw(IORING_UNREGISTER_PBUF_RING, &reg, 1);
}

// The kernel's layout: the descriptors start at offset 0, the tail overlays the `resv` field of
// the first one.
static_assert(offsetof(io_uring_buf_ring, tail) == 14 && sizeof(io_uring_buf) == 16);

void buffer_ring::stage(std::uint16_t id) noexcept {
    // Not `br_->bufs`: the UAPI header declares it with __DECLARE_FLEX_ARRAY, which puts an
    // empty struct before the array; an empty struct is 0 bytes in C but 1 byte in C++, so in
    // C++ `bufs` starts 8 bytes late and every descriptor would land where the kernel does
    // not look (recv then fails with ENOBUFS).
    auto* bufs = reinterpret_cast<io_uring_buf*>(ring_memory_.data());
    io_uring_buf& buf = bufs[tail_ & (count_ - 1)];
    buf.addr = reinterpret_cast<std::uintptr_t>(buffer(id).data());
    buf.len = static_cast<std::uint32_t>(buffer_size_);
    buf.bid = id;
    ++tail_;
}

void buffer_ring::publish() noexcept {
    std::atomic_ref(br_->tail).store(tail_, std::memory_order_release);
}

} // namespace tram
