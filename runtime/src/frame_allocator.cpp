#include <tram/frame_allocator.hpp>

#include <array>
#include <new>

namespace tram::frame_allocator {
namespace {

constexpr std::size_t granule = 64;
constexpr std::size_t class_count = max_pooled / granule;

struct free_block {
    free_block* next;
};

// One free list per size class and thread. Blocks are never returned to the system while the
// thread lives: the set of frame sizes a program uses is small and its peak is reached early.
class pool {
public:
    pool() = default;
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    ~pool() {
        for (free_block* head : heads_) {
            while (head != nullptr) {
                free_block* next = head->next;
                ::operator delete(head);
                head = next;
            }
        }
    }

    void* take(std::size_t cls) {
        if (free_block* b = heads_[cls]) {
            heads_[cls] = b->next;
            return b;
        }
        return ::operator new((cls + 1) * granule);
    }
    void give(void* p, std::size_t cls) noexcept {
        heads_[cls] = new (p) free_block{heads_[cls]};
    }

private:
    std::array<free_block*, class_count> heads_{};
};

thread_local pool frames;

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
    return frames.take(size_class(size));
}

void deallocate(void* frame, std::size_t size) noexcept {
    if (!pooled(size)) {
        ::operator delete(frame);
        return;
    }
    frames.give(frame, size_class(size));
}

} // namespace tram::frame_allocator
