// Recycling memory for coroutine frames, so that starting a task does not call malloc.
#pragma once

#include <cstddef>

namespace tram::frame_allocator {

/// Memory for a coroutine frame of `size` bytes. Frames up to `max_pooled` bytes come from a
/// per-thread free list of their size class (64-byte steps) and go back to the free list of
/// the thread that frees them; larger frames use ::operator new.
[[nodiscard]] void* allocate(std::size_t size);
void deallocate(void* frame, std::size_t size) noexcept;

inline constexpr std::size_t max_pooled = 4096;

} // namespace tram::frame_allocator
