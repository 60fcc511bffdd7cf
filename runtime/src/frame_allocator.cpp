#include <tram/frame_allocator.hpp>

#include <array>
#include <new>
#include <utility>

namespace tram::frame_allocator {
namespace {

constexpr std::size_t granule = 64;
constexpr std::size_t class_count = max_pooled / granule;

struct free_block {
    free_block* next;
};

// One free list per size class and thread. A frame goes back to the list of the thread that
// frees it, which need not be the one that allocated it (a task spawned on one worker and
// finished on another). So that a thread which only ever frees (a consumer of connections
// accepted elsewhere) cannot hoard memory, each thread keeps at most `cache_budget` bytes
// and hands the rest back to the general allocator.
//
// The state is trivially destructible on purpose: a frame may be freed after the thread's
// thread_local destructors ran (a task owned by a static, destroyed at exit). `closed` then
// sends it straight to ::operator delete instead of into a list nobody will drain.
struct pool_state {
    std::array<free_block*, class_count> heads{};
    std::size_t cached_bytes = 0;
    bool closed = false;
};

constinit thread_local pool_state state;

// Drains the lists when the thread ends; its destructor is registered on first use, which is
// the first block cached (see `give`), so threads that never cache pay nothing.
struct pool_drain {
    pool_drain() = default;
    pool_drain(const pool_drain&) = delete;
    pool_drain& operator=(const pool_drain&) = delete;
    ~pool_drain() {
        state.closed = true;
        for (free_block*& head : state.heads) {
            while (head != nullptr)
                ::operator delete(std::exchange(head, head->next));
        }
        state.cached_bytes = 0;
    }
    bool armed = false;
};

thread_local pool_drain drain_at_exit;

constexpr std::size_t class_bytes(std::size_t cls) noexcept { return (cls + 1) * granule; }

void* take(std::size_t cls) {
    if (free_block* b = state.heads[cls]) {
        state.heads[cls] = b->next;
        state.cached_bytes -= class_bytes(cls);
        return b;
    }
    return ::operator new(class_bytes(cls));
}

void give(void* p, std::size_t cls) noexcept {
    if (state.closed || state.cached_bytes + class_bytes(cls) > cache_budget) {
        ::operator delete(p);
        return;
    }
    drain_at_exit.armed = true;
    state.heads[cls] = new (p) free_block{state.heads[cls]};
    state.cached_bytes += class_bytes(cls);
}

constexpr std::size_t size_class(std::size_t size) noexcept { return (size - 1) / granule; }

// Under AddressSanitizer every frame gets its own allocation, so that a use of a destroyed
// frame is reported instead of landing in a recycled one.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif
#else
constexpr bool pooling = true;
#endif

bool pooled(std::size_t size) noexcept { return pooling && size != 0 && size <= max_pooled; }

} // namespace

void* allocate(std::size_t size) {
    if (!pooled(size)) return ::operator new(size);
    return take(size_class(size));
}

void deallocate(void* frame, std::size_t size) noexcept {
    if (!pooled(size)) {
        ::operator delete(frame);
        return;
    }
    give(frame, size_class(size));
}

std::size_t cached_bytes() noexcept { return state.cached_bytes; }

} // namespace tram::frame_allocator
