// Tests of runtime/src/frame_allocator.cpp.
#include <tram/frame_allocator.hpp>
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

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
