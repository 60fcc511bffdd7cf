// Tests of lib/buffer_ring.cpp: ring-mapped provided buffers, used by multishot recv until the
// MORE flag drops, running dry, and recycling.
#include <tram/buffer_ring.hpp>
#include <tram/error.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>

using namespace tram;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test::sqe_of;

namespace {

ring_options small() {
    ring_options o;
    o.entries = 16;
    return o;
}

std::string text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void send_all(int fd, const std::string& s) {
    REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<long>(s.size()));
}

void arm_recv_multishot(ring& r, int fd, std::uint16_t group, std::uint64_t user_data) {
    io_uring_sqe& s = sqe_of(r);
    prep_recv_multishot(s, fd, group);
    set_user_data(s, user_data);
    REQUIRE(r.submit() == 1);
}

} // namespace

TEST_CASE("a buffer ring hands out its buffers to recv with buffer selection") {
    ring r(small());
    buffer_ring bufs(r, 3, 4, 128);
    CHECK(bufs.group_id() == 3);
    CHECK(bufs.count() == 4);
    CHECK(bufs.buffer_size() == 128);
    CHECK(bufs.buffer(1).data() == bufs.buffer(0).data() + 128);
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    send_all(a.get(), "one recv");
    io_uring_sqe& s = sqe_of(r);
    prep_recv_select(s, b.get(), 3);
    set_user_data(s, 1);
    const completion c = test::reap_one(r);
    CHECK(c.result == 8);
    REQUIRE(c.buffer_id().has_value());
    CHECK(*c.buffer_id() < 4);
    CHECK(text(bufs.data(*c.buffer_id(), 8)) == "one recv");
}

TEST_CASE("multishot recv with a buffer ring posts one CQE with MORE per message until the "
          "ring runs dry, which ends it with -ENOBUFS and no MORE") {
    ring r(small());
    buffer_ring bufs(r, 1, 4, 64);
    auto [a, b] = test::make_socketpair(SOCK_SEQPACKET);
    arm_recv_multishot(r, b.get(), 1, 7);
    std::set<std::uint16_t> ids;
    for (int i = 0; i < 4; ++i) {
        const std::string msg = "message " + std::to_string(i);
        send_all(a.get(), msg);
        const completion c = test::reap_one(r);
        CHECK(c.user_data == 7);
        CHECK(c.result == static_cast<int>(msg.size()));
        CHECK(c.more());
        REQUIRE(c.buffer_id().has_value());
        CHECK(text(bufs.data(*c.buffer_id(), msg.size())) == msg);
        ids.insert(*c.buffer_id());
    }
    CHECK(ids == std::set<std::uint16_t>{0, 1, 2, 3}); // each buffer once, none recycled
    send_all(a.get(), "no room");
    const completion dry = test::reap_one(r);
    CHECK(dry.user_data == 7);
    CHECK(dry.result == -ENOBUFS);
    CHECK_FALSE(dry.more());
    CHECK_FALSE(dry.buffer_id().has_value());
    CHECK(test::reap_for(r, 20ms).empty()); // ended: nothing more comes
}

TEST_CASE("recycling buffers lets a re-armed multishot recv go on") {
    ring r(small());
    buffer_ring bufs(r, 1, 2, 64);
    auto [a, b] = test::make_socketpair(SOCK_SEQPACKET);
    arm_recv_multishot(r, b.get(), 1, 1);
    send_all(a.get(), "a");
    send_all(a.get(), "b");
    const auto first = test::reap(r, 2);
    send_all(a.get(), "pending"); // no buffer left for it
    const completion dry = test::reap_one(r);
    REQUIRE(dry.result == -ENOBUFS);
    REQUIRE_FALSE(dry.more());

    // Give both back in one batch, and re-arm: the message that waited is delivered.
    for (const completion& c : first)
        bufs.stage(*c.buffer_id());
    bufs.publish();
    arm_recv_multishot(r, b.get(), 1, 2);
    const completion c = test::reap_one(r);
    CHECK(c.user_data == 2);
    CHECK(c.result == 7);
    CHECK(c.more());
    CHECK(text(bufs.data(*c.buffer_id(), 7)) == "pending");
    bufs.recycle(*c.buffer_id());
    for (int i = 0; i < 6; ++i) { // many more than the two buffers, each recycled at once
        send_all(a.get(), "x" + std::to_string(i));
        const completion n = test::reap_one(r);
        CHECK(n.result == 2);
        CHECK(n.more());
        bufs.recycle(*n.buffer_id());
    }
}

TEST_CASE("multishot recv over loopback TCP ends without MORE when the peer closes") {
    ring r(small());
    buffer_ring bufs(r, 2, 8, 256);
    test::fd_pair tcp = test::make_tcp_pair();
    arm_recv_multishot(r, tcp.second.get(), 2, 3);
    send_all(tcp.first.get(), "over tcp");
    const completion c = test::reap_one(r);
    CHECK(c.result == 8);
    CHECK(c.more());
    CHECK(text(bufs.data(*c.buffer_id(), 8)) == "over tcp");
    tcp.first.reset();
    const completion end = test::reap_one(r);
    CHECK(end.result == 0);
    CHECK_FALSE(end.more());
}

TEST_CASE("a buffer count that is not a power of two is refused with EINVAL, named") {
    ring r(small());
    try {
        buffer_ring bufs(r, 1, 3, 64);
        FAIL("no error");
    } catch (const tram::error& e) {
        CHECK(e.errnum() == EINVAL);
        CHECK_THAT(e.what(), Contains("power of two") && Contains("not 3"));
    }
}

TEST_CASE("a group id that is taken is refused with EEXIST, and free again once destroyed") {
    ring r(small());
    {
        buffer_ring first(r, 5, 2, 64);
        try {
            buffer_ring second(r, 5, 2, 64);
            FAIL("no error");
        } catch (const tram::error& e) {
            CHECK(e.errnum() == EEXIST);
            CHECK_THAT(e.what(), Contains("group id is taken") && Contains("(EEXIST)"));
        }
    }
    buffer_ring again(r, 5, 2, 64); // the destructor unregistered the group
    CHECK(again.group_id() == 5);
}
