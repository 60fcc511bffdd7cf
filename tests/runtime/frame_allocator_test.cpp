// Tests of runtime/src/frame_allocator.cpp.
#include <tram/frame_allocator.hpp>
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using namespace tram;

namespace {
#if defined(__SANITIZE_ADDRESS__)
constexpr bool asan = true;
#else
constexpr bool asan = false;
#endif
} // namespace

TEST_CASE("a freed frame's memory is handed out again for a frame of its size class") {
    void* a = frame_allocator::allocate(200);
    frame_allocator::deallocate(a, 200);
    void* b = frame_allocator::allocate(250); // the same 64-byte class: 193..256 bytes
    frame_allocator::deallocate(b, 250);
    void* c = frame_allocator::allocate(200);
    if (asan) {
        CHECK(b != nullptr); // pooling is off under AddressSanitizer: nothing to compare
    } else {
        CHECK(b == a);
        CHECK(c == a);
    }
    frame_allocator::deallocate(c, 200);
}

TEST_CASE("frames of different size classes do not share memory") {
    void* small = frame_allocator::allocate(64);
    void* large = frame_allocator::allocate(65);
    CHECK(small != large);
    frame_allocator::deallocate(small, 64);
    void* again = frame_allocator::allocate(65);
    CHECK(again != small);
    frame_allocator::deallocate(again, 65);
    frame_allocator::deallocate(large, 65);
}

TEST_CASE("a task's frame is recycled for the next task of the same kind") {
    auto make = []() -> task<int> { co_return 3; };
    void* first = nullptr;
    void* second = nullptr;
    {
        auto t = make();
        first = t.handle().address();
    }
    {
        auto t = make();
        second = t.handle().address();
    }
    if (!asan) CHECK(first == second);
}

TEST_CASE("frames larger than the pooled maximum come from the general allocator") {
    void* big = frame_allocator::allocate(frame_allocator::max_pooled + 1);
    REQUIRE(big != nullptr);
    frame_allocator::deallocate(big, frame_allocator::max_pooled + 1);
}

TEST_CASE("a thread that frees frames allocated elsewhere keeps no more than its cache budget") {
    constexpr std::size_t size = 512;
    constexpr std::size_t count = 4 * frame_allocator::cache_budget / size;
    std::vector<void*> frames(count);
    for (void*& f : frames)
        f = frame_allocator::allocate(size);
    std::size_t kept = 0;
    std::thread consumer([&] {
        for (void* f : frames)
            frame_allocator::deallocate(f, size);
        kept = frame_allocator::cached_bytes();
    });
    consumer.join();
    CHECK(kept <= frame_allocator::cache_budget);
    if (!asan) CHECK(kept > frame_allocator::cache_budget / 2);
}

namespace {
// Frees its frame from a thread_local destructor that runs after the allocator's own (it was
// constructed first), as a task owned by a thread_local or a static would at exit.
struct late_owner {
    void* frame = nullptr;
    std::size_t* cached_after = nullptr;
    ~late_owner() {
        frame_allocator::deallocate(frame, 128);
        *cached_after = frame_allocator::cached_bytes();
    }
};
} // namespace

TEST_CASE("a frame freed after its thread's pool was drained goes back to the system") {
    std::size_t cached_after = 1;
    std::thread([&] {
        thread_local late_owner owner;
        owner.frame = frame_allocator::allocate(128);
        owner.cached_after = &cached_after;
        frame_allocator::deallocate(frame_allocator::allocate(64), 64); // the pool is in use
    }).join();
    CHECK(cached_after == 0);
}
