// Tests of runtime/src/frame_allocator.cpp.
#include <tram/frame_allocator.hpp>

#include <catch2/catch.hpp>

using namespace tram;

namespace {
#if defined(__SANITIZE_ADDRESS__)
constexpr bool asan = true;
#else
constexpr bool asan = false;
#endif
} // namespace

TEST_CASE("a freed frame's memory is handed out again for a frame of the same size class") {
    void* a = frame_allocator::allocate(200);
    frame_allocator::deallocate(a, 200);
    void* b = frame_allocator::allocate(190); // same 64-byte class (129..192? no: 193..256)
    frame_allocator::deallocate(b, 190);
    void* c = frame_allocator::allocate(200);
    if (asan) {
        SUCCEED("pooling is off under AddressSanitizer");
    } else {
        CHECK(c == a);
    }
    frame_allocator::deallocate(c, 200);
}

TEST_CASE("frames larger than the pooled maximum come from the general allocator") {
    void* big = frame_allocator::allocate(frame_allocator::max_pooled + 1);
    REQUIRE(big != nullptr);
    frame_allocator::deallocate(big, frame_allocator::max_pooled + 1);
}
