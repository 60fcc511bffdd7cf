// Tests of include/tram/completion_queue.hpp: the CQE flag helpers, peeking, batched head
// updates, leaving an iteration early, and CQ overflow with a tiny CQ losing nothing.
#include <tram/completion_queue.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

void prep_nops(ring& r, std::uint64_t first, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
        io_uring_sqe& s = test::sqe_of(r);
        prep_nop(s);
        set_user_data(s, first + i);
    }
}

ring_options sized(unsigned sq, unsigned cq) {
    ring_options o;
    o.entries = sq;
    o.cq_entries = cq;
    return o;
}

} // namespace

TEST_CASE("the CQE flag helpers read MORE, the buffer id, SOCK_NONEMPTY and NOTIF") {
    completion c;
    c.flags = IORING_CQE_F_BUFFER | IORING_CQE_F_MORE | (513U << IORING_CQE_BUFFER_SHIFT);
    CHECK(c.more());
    REQUIRE(c.buffer_id().has_value());
    CHECK(*c.buffer_id() == 513);
    CHECK_FALSE(c.notification());
    CHECK_FALSE(c.sock_nonempty());

    c.flags = IORING_CQE_F_NOTIF;
    CHECK(c.notification());
    CHECK_FALSE(c.more());
    CHECK_FALSE(c.buffer_id().has_value());

    c.flags = IORING_CQE_F_SOCK_NONEMPTY | uapi::cqe_f_buf_more;
    CHECK(c.sock_nonempty());
    CHECK(c.buffer_more());

    c.result = -ECANCELED;
    CHECK_FALSE(c.ok());
    CHECK(c.error() == ECANCELED);
    c.result = 12;
    CHECK(c.ok());
    CHECK(c.error() == 0);
}

TEST_CASE("the buffer id ignores the upper bits without the BUFFER flag") {
    completion c;
    c.flags = 7U << IORING_CQE_BUFFER_SHIFT;
    CHECK_FALSE(c.buffer_id().has_value());
}

TEST_CASE("peek leaves the oldest completion in place until advance") {
    ring r(sized(4, 8));
    CHECK_FALSE(r.cq().peek().has_value());
    prep_nops(r, 10, 2);
    REQUIRE(r.submit_and_wait(2, 5s) == 2);
    CHECK(r.cq().ready() == 2);
    CHECK(r.cq().peek()->user_data == 10);
    CHECK(r.cq().peek()->user_data == 10);
    r.cq().advance(1);
    CHECK(r.cq().ready() == 1);
    CHECK(r.cq().peek()->user_data == 11);
    r.cq().advance(1);
    CHECK_FALSE(r.cq().peek().has_value());
}

TEST_CASE("the head is handed back once per batch, not per completion") {
    ring r(sized(8, 16));
    prep_nops(r, 0, 8);
    REQUIRE(r.submit_and_wait(8, 5s) == 8);
    std::vector<unsigned> ready_during;
    for (const completion& c : r.completions()) {
        (void)c;
        ready_during.push_back(r.cq().ready());
    }
    CHECK(ready_during == std::vector<unsigned>(8, 8)); // the kernel saw no head move yet
    CHECK(r.cq().ready() == 0);
}

TEST_CASE("breaking out of an iteration consumes only the completions seen") {
    ring r(sized(8, 16));
    prep_nops(r, 0, 8);
    REQUIRE(r.submit_and_wait(8, 5s) == 8);
    std::vector<std::uint64_t> first;
    for (const completion& c : r.completions()) {
        first.push_back(c.user_data);
        if (first.size() == 3) break;
    }
    CHECK(first == std::vector<std::uint64_t>{0, 1, 2});
    CHECK(r.cq().ready() == 5);
    std::vector<std::uint64_t> rest;
    for (const completion& c : r.completions())
        rest.push_back(c.user_data);
    CHECK(rest == std::vector<std::uint64_t>{3, 4, 5, 6, 7});
}

TEST_CASE("an exception out of the loop body consumes the completion in hand, not more") {
    ring r(sized(4, 8));
    prep_nops(r, 0, 3);
    REQUIRE(r.submit_and_wait(3, 5s) == 3);
    try {
        for (const completion& c : r.completions()) {
            if (c.user_data == 1) throw std::runtime_error("handler failed");
        }
    } catch (const std::runtime_error&) {
    }
    CHECK(r.cq().ready() == 1);
    CHECK(r.cq().peek()->user_data == 2);
    r.cq().advance(1);
}

TEST_CASE("an iteration that is never started consumes nothing") {
    ring r(sized(4, 8));
    prep_nops(r, 0, 2);
    REQUIRE(r.submit_and_wait(2, 5s) == 2);
    { auto range = r.completions(); }
    CHECK(r.cq().ready() == 2);
    CHECK(test::reap(r, 2).size() == 2);
}

TEST_CASE("an iteration over an empty CQ ends at once") {
    ring r(sized(4, 8));
    int n = 0;
    for (const completion& c : r.completions()) {
        (void)c;
        ++n;
    }
    CHECK(n == 0);
}

TEST_CASE("a tiny CQ overflows without losing a completion: every user_data exactly once") {
    ring r(sized(2, 2));
    REQUIRE(r.cq().capacity() == 2);
    REQUIRE(r.features().contains(feature::nodrop));
    constexpr unsigned total = 200;
    for (std::uint64_t next = 0; next < total; next += 2) {
        prep_nops(r, next, 2);
        const int res = r.submit();
        REQUIRE(res == 2);
    }
    CHECK(r.sq().cq_overflow());
    std::map<std::uint64_t, int> seen;
    for (int turn = 0; turn < 1000 && seen.size() < total; ++turn) {
        for (const completion& c : r.completions()) {
            ++seen[c.user_data];
            CHECK(c.result == 0);
        }
        REQUIRE(r.flush_completions() >= 0);
    }
    REQUIRE(seen.size() == total);
    for (const auto& [user_data, times] : seen) {
        INFO("user_data " << user_data);
        CHECK(times == 1);
    }
    CHECK(r.cq().overflow() == 0);
    CHECK_FALSE(r.sq().cq_overflow());
    CHECK(r.cq().ready() == 0);
}

TEST_CASE("a blocking iteration also drains the completions that overflowed") {
    ring r(sized(4, 4));
    constexpr unsigned total = 40;
    for (std::uint64_t next = 0; next < total; next += 4) {
        prep_nops(r, next, 4);
        REQUIRE(r.submit() == 4);
    }
    std::vector<std::uint64_t> order;
    for (const completion& c : r.wait_completions()) {
        order.push_back(c.user_data);
        if (order.size() == total) break;
    }
    REQUIRE(order.size() == total);
    for (std::uint64_t i = 0; i < total; ++i)
        CHECK(order[i] == i); // NOPs complete in order
    CHECK(r.cq().ready() == 0);
    CHECK(test::reap_for(r, 10ms).empty());
}
