// Recycling memory for coroutine frames, so that starting a task does not call malloc.
#pragma once

#include <cstddef>

namespace tram::frame_allocator {

/// Frames up to this many bytes are pooled; larger ones use ::operator new.
inline constexpr std::size_t max_pooled = 4096;

/// The most bytes of freed frames one thread keeps for reuse; beyond it a freed frame goes
/// back to ::operator delete, so a thread that frees frames others allocated stays bounded.
inline constexpr std::size_t cache_budget = std::size_t{1} << 20;

/// Memory for a coroutine frame of `size` bytes. Frames up to `max_pooled` bytes come from a
/// per-thread free list of their size class (64-byte steps) and go back to the free list of
/// the thread that frees them, within its `cache_budget`.
[[nodiscard]] void* allocate(std::size_t size);

/// Gives back a frame from `allocate(size)`, on any thread, also after that thread's
/// thread_local objects were destroyed (then straight to ::operator delete).
void deallocate(void* frame, std::size_t size) noexcept;

/// The bytes of freed frames the calling thread holds for reuse (0 under AddressSanitizer,
/// which pools nothing).
[[nodiscard]] std::size_t cached_bytes() noexcept;

} // namespace tram::frame_allocator
