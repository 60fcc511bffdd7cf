// Tests of lib/ring.cpp: setup, flags and features, submitting and waiting, the SQ, link
// chains, CQ overflow, timed and blocking waits, disabled rings, the registered ring fd,
// SQPOLL, big entries, NO_SQARRAY, and setup failures.
#include <tram/error.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

void prep_nop_with(ring& r, std::uint64_t user_data) {
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_nop(sqe);
    set_user_data(sqe, user_data);
}

ring_options options_with(setup_flags flags, unsigned entries = 8) {
    ring_options o;
    o.entries = entries;
    o.flags = flags;
    return o;
}

// Runs `f`, which must throw tram::error; returns it.
template <typename F>
tram::error error_from(F&& f) {
    try {
        f();
    } catch (const tram::error& e) {
        return e;
    }
    FAIL("no tram::error was thrown");
    return tram::error(0, "unreachable");
}

} // namespace

TEST_CASE("a default ring submits a nop and reaps its completion") {
    ring r;
    io_uring_sqe* sqe = r.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_nop(*sqe);
    set_user_data(*sqe, 42);
    REQUIRE(r.submit_and_wait(1) == 1);
    int seen = 0;
    for (const completion& c : r.completions()) {
        CHECK(c.user_data == 42);
        CHECK(c.result == 0);
        ++seen;
    }
    CHECK(seen == 1);
    CHECK(r.cq().ready() == 0);
}

// ---- Setup, flags and features -------------------------------------------------------------

TEST_CASE("a ring reports the features the kernel answered with") {
    ring r;
    const features f = r.features();
    CHECK(f.contains(feature::single_mmap));
    CHECK(f.contains(feature::nodrop));
    CHECK(f.contains(feature::submit_stable));
    CHECK(f.contains(feature::ext_arg));
    CHECK(f.contains_all(feature::nodrop | feature::ext_arg));
    CHECK_THAT(to_string(f), Contains("nodrop") && Contains("ext_arg"));
}

TEST_CASE("a ring reports the setup flags it was given, including those its options imply") {
    ring_options o;
    o.entries = 8;
    o.flags = setup_flag::submit_all;
    o.cq_entries = 64;
    ring r(o);
    CHECK(r.flags().contains(setup_flag::submit_all));
    CHECK(r.flags().contains(setup_flag::cqsize));
    CHECK_FALSE(r.flags().contains(setup_flag::sqpoll));
    CHECK(to_string(r.flags()) == "cqsize, submit_all");
}

TEST_CASE("the kernel rounds the SQ size up to a power of two and makes the CQ twice as big") {
    ring r(options_with({}, 5));
    CHECK(r.sq().capacity() == 8);
    CHECK(r.cq().capacity() == 16);
    CHECK(r.sq().space_left() == 8);
}

TEST_CASE("cq_entries sizes the completion queue") {
    ring_options o;
    o.entries = 4;
    o.cq_entries = 100;
    ring r(o);
    CHECK(r.sq().capacity() == 4);
    CHECK(r.cq().capacity() == 128);
}

TEST_CASE("too many entries fail with EINVAL and a message that names the cause") {
    const tram::error e = error_from([] { ring r(options_with({}, 65536)); });
    CHECK(e.errnum() == EINVAL);
    CHECK(e.code() == std::error_code(EINVAL, std::system_category()));
    CHECK_THAT(e.what(), Contains("io_uring_setup") && Contains("entries 65536") &&
                             Contains("too many entries") && Contains("(EINVAL)"));
}

TEST_CASE("clamp caps too many entries instead of failing") {
    ring r(options_with(setup_flag::clamp, 65536));
    CHECK(r.sq().capacity() == 32768);
}

TEST_CASE("zero entries fail with EINVAL") {
    const tram::error e = error_from([] { ring r(options_with({}, 0)); });
    CHECK(e.errnum() == EINVAL);
    CHECK_THAT(e.what(), Contains("entries 0"));
}

TEST_CASE("a setup flag the kernel does not know fails with EINVAL and is named as a bit") {
    const tram::error e =
        error_from([] { ring r(options_with(setup_flags::from_bits(1U << 30))); });
    CHECK(e.errnum() == EINVAL);
    CHECK_THAT(e.what(), Contains("bit30") && Contains("(EINVAL)"));
}

TEST_CASE("a CQ smaller than the SQ fails with EINVAL naming cqsize") {
    ring_options o;
    o.entries = 64;
    o.cq_entries = 8;
    const tram::error e = error_from([&] { ring r(o); });
    CHECK(e.errnum() == EINVAL);
    CHECK_THAT(e.what(), Contains("cqsize"));
}

TEST_CASE("attaching to the worker pool of a descriptor that is no ring fails with EINVAL") {
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(efd >= 0);
    ring_options o;
    o.entries = 4;
    o.attach_wq_fd = efd;
    const tram::error e = error_from([&] { ring r(o); });
    ::close(efd);
    CHECK(e.errnum() == EINVAL);
    CHECK_THAT(e.what(), Contains("attach_wq"));
}

TEST_CASE("a ring attached to another ring's worker pool runs ops") {
    ring first(options_with({}, 4));
    ring_options o;
    o.entries = 4;
    o.attach_wq_fd = first.fd();
    ring second(o);
    CHECK(second.flags().contains(setup_flag::attach_wq));
    prep_nop_with(second, 9);
    CHECK(test::reap_one(second).user_data == 9);
}

// ---- Submitting and waiting ------------------------------------------------------------------

TEST_CASE("submit returns how many SQEs the kernel consumed") {
    ring r(options_with({}, 8));
    for (std::uint64_t i = 0; i < 3; ++i)
        prep_nop_with(r, i);
    CHECK(r.sq().unpublished() == 3);
    CHECK(r.sq().pending() == 3);
    CHECK(r.submit() == 3);
    CHECK(r.sq().unpublished() == 0);
    CHECK(r.sq().pending() == 0);
    const auto cs = test::reap(r, 3);
    for (std::uint64_t i = 0; i < 3; ++i) {
        CHECK(cs[i].user_data == i);
        CHECK(cs[i].result == 0);
        CHECK(cs[i].flags == 0);
    }
}

TEST_CASE("submit with nothing prepared returns zero") {
    ring r(options_with({}, 4));
    CHECK(r.submit() == 0);
    CHECK(r.cq().ready() == 0);
}

TEST_CASE("submit_and_wait returns once the wanted completions are in the CQ") {
    ring r(options_with({}, 8));
    for (std::uint64_t i = 0; i < 4; ++i)
        prep_nop_with(r, i);
    CHECK(r.submit_and_wait(4) == 4);
    CHECK(r.cq().ready() == 4);
    CHECK(test::reap(r, 4).size() == 4);
}

TEST_CASE("the SQ runs full, get_sqe says so, and submitting frees it again") {
    ring r(options_with({}, 4));
    for (std::uint64_t i = 0; i < 4; ++i)
        prep_nop_with(r, i);
    CHECK(r.sq().space_left() == 0);
    CHECK(r.get_sqe() == nullptr);
    CHECK_FALSE(r.sq().reserve(1).has_value());
    CHECK(r.submit() == 4);
    CHECK(r.sq().space_left() == 4);
    prep_nop_with(r, 4);
    CHECK(test::reap(r, 5).back().user_data == 4);
}

TEST_CASE("submission wraps around a small ring many times without losing an op") {
    ring r(options_with({}, 4));
    std::set<std::uint64_t> seen;
    for (std::uint64_t round = 0; round < 50; ++round) {
        for (std::uint64_t i = 0; i < 3; ++i)
            prep_nop_with(r, round * 3 + i);
        for (const completion& c : test::reap(r, 3))
            seen.insert(c.user_data);
    }
    CHECK(seen.size() == 150);
    CHECK(*seen.rbegin() == 149);
}

TEST_CASE("an op on a bad descriptor fails in its CQE with -EBADF, not in submit") {
    ring r(options_with({}, 4));
    std::byte buf[8];
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_read(sqe, 1'000'000, buf, 0);
    set_user_data(sqe, 5);
    const completion c = test::reap_one(r);
    CHECK(c.user_data == 5);
    CHECK(c.result == -EBADF);
    CHECK_FALSE(c.ok());
    CHECK(c.error() == EBADF);
}

TEST_CASE("an op on a bad address fails with -EFAULT") {
    ring r(options_with({}, 4));
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], "x", 1) == 1);
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_read(sqe, fds[0], std::span(reinterpret_cast<std::byte*>(16), 8), current_position);
    CHECK(test::reap_one(r).result == -EFAULT);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("an SQE with an unknown opcode fails with -EINVAL in its CQE") {
    ring r(options_with({}, 4));
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_nop(sqe);
    sqe.opcode = 250;
    set_user_data(sqe, 1);
    CHECK(test::reap_one(r).result == -EINVAL);
}

TEST_CASE("io_uring_enter with a flag the kernel does not know returns -EINVAL") {
    ring r(options_with({}, 4));
    CHECK(r.enter(0, 0, 1U << 30) == -EINVAL);
}

// ---- Reserved ranges and link chains
// --------------------------------------------------------------

TEST_CASE("reserve hands out N contiguous SQEs, or none when fewer are free") {
    ring r(options_with({}, 4));
    CHECK_FALSE(r.sq().reserve(0).has_value());
    CHECK_FALSE(r.sq().reserve(5).has_value());
    auto range = r.sq().reserve(3);
    REQUIRE(range.has_value());
    CHECK(range->size() == 3);
    CHECK(r.sq().space_left() == 1);
    CHECK_FALSE(r.sq().reserve(2).has_value());
    CHECK(r.sq().space_left() == 1);
    std::uint64_t n = 0;
    for (io_uring_sqe& sqe : *range) {
        prep_nop(sqe);
        set_user_data(sqe, n++);
    }
    CHECK(&(*range)[1] == &(*range)[0] + 1);
    const auto cs = test::reap(r, 3);
    for (std::uint64_t i = 0; i < 3; ++i)
        CHECK(cs[i].user_data == i);
}

TEST_CASE("a reserved range wraps around the end of the SQ ring") {
    ring r(options_with({}, 4));
    for (std::uint64_t i = 0; i < 3; ++i)
        prep_nop_with(r, i);
    CHECK(test::reap(r, 3).size() == 3);
    auto range = r.sq().reserve(4);
    REQUIRE(range.has_value());
    std::uint64_t n = 10;
    for (io_uring_sqe& sqe : *range) {
        prep_nop(sqe);
        set_user_data(sqe, n++);
    }
    range->link(link_kind::soft);
    const auto cs = test::reap(r, 4);
    for (std::uint64_t i = 0; i < 4; ++i) {
        CHECK(cs[i].user_data == 10 + i);
        CHECK(cs[i].result == 0);
    }
}

TEST_CASE("link flags every SQE of the range but the last") {
    ring r(options_with({}, 8));
    auto range = r.sq().reserve(3);
    REQUIRE(range.has_value());
    for (io_uring_sqe& sqe : *range)
        prep_nop(sqe);
    range->link(link_kind::hard);
    CHECK((*range)[0].flags == IOSQE_IO_HARDLINK);
    CHECK((*range)[1].flags == IOSQE_IO_HARDLINK);
    CHECK((*range)[2].flags == 0);
    range->link(link_kind::soft); // relinking replaces, never adds both kinds
    CHECK((*range)[0].flags == IOSQE_IO_LINK);
    CHECK((*range)[2].flags == 0);
    CHECK(test::reap(r, 3).size() == 3);
}

TEST_CASE("a failing op cancels the rest of a soft-linked chain with -ECANCELED") {
    ring r(options_with({}, 8));
    std::byte buf[8];
    auto range = r.sq().reserve(3);
    REQUIRE(range.has_value());
    prep_nop((*range)[0]);
    prep_read((*range)[1], 1'000'000, buf, 0); // bad fd
    prep_nop((*range)[2]);
    for (unsigned i = 0; i < 3; ++i)
        set_user_data((*range)[i], i);
    range->link(link_kind::soft);
    auto cs = test::reap(r, 3);
    std::sort(cs.begin(), cs.end(), [](auto& a, auto& b) { return a.user_data < b.user_data; });
    CHECK(cs[0].result == 0);
    CHECK(cs[1].result == -EBADF);
    CHECK(cs[2].result == -ECANCELED);
}

TEST_CASE("a failing op does not stop the rest of a hard-linked chain") {
    ring r(options_with({}, 8));
    std::byte buf[8];
    auto range = r.sq().reserve(3);
    REQUIRE(range.has_value());
    prep_read((*range)[0], 1'000'000, buf, 0); // bad fd
    prep_nop((*range)[1]);
    prep_nop((*range)[2]);
    for (unsigned i = 0; i < 3; ++i)
        set_user_data((*range)[i], i);
    range->link(link_kind::hard);
    auto cs = test::reap(r, 3);
    std::sort(cs.begin(), cs.end(), [](auto& a, auto& b) { return a.user_data < b.user_data; });
    CHECK(cs[0].result == -EBADF);
    CHECK(cs[1].result == 0);
    CHECK(cs[2].result == 0);
}

TEST_CASE("a soft-linked chain runs its ops in order") {
    ring r(options_with({}, 8));
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const std::string msg = "linked";
    std::byte in[16]{};
    auto range = r.sq().reserve(2);
    REQUIRE(range.has_value());
    prep_write((*range)[0], fds[1], std::as_bytes(std::span(msg)), current_position);
    prep_read((*range)[1], fds[0], in, current_position);
    set_user_data((*range)[0], 1);
    set_user_data((*range)[1], 2);
    range->link();
    const auto cs = test::reap(r, 2);
    CHECK(cs[0].user_data == 1);
    CHECK(cs[0].result == 6);
    CHECK(cs[1].user_data == 2);
    CHECK(cs[1].result == 6);
    CHECK(std::string(reinterpret_cast<char*>(in), 6) == msg);
    ::close(fds[0]);
    ::close(fds[1]);
}

// ---- CQ overflow
// ----------------------------------------------------------------------------------

TEST_CASE("completions that overflow a full CQ are kept by the kernel and flushed back") {
    ring_options o;
    o.entries = 4;
    o.cq_entries = 4;
    ring r(o);
    REQUIRE(r.features().contains(feature::nodrop));
    for (std::uint64_t round = 0; round < 3; ++round) {
        for (std::uint64_t i = 0; i < 4; ++i)
            prep_nop_with(r, round * 4 + i);
        REQUIRE(r.submit() == 4);
    }
    CHECK(r.cq().ready() == 4);
    CHECK(r.sq().cq_overflow());
    CHECK(r.cq().overflow() == 0); // nothing dropped
    std::vector<std::uint64_t> seen;
    for (int turn = 0; turn < 10 && seen.size() < 12; ++turn) {
        for (const completion& c : r.completions())
            seen.push_back(c.user_data);
        REQUIRE(r.flush_completions() >= 0);
    }
    REQUIRE(seen.size() == 12);
    for (std::uint64_t i = 0; i < 12; ++i)
        CHECK(seen[i] == i);
    CHECK_FALSE(r.sq().cq_overflow());
}

// ---- Timed and blocking waits -------------------------------------------------------------------

TEST_CASE("a timed wait with nothing in flight returns -ETIME after the timeout") {
    ring r(options_with({}, 4));
    const auto start = std::chrono::steady_clock::now();
    CHECK(r.submit_and_wait(1, 50ms) == -ETIME);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 45ms);
    CHECK(took < 2s);
}

TEST_CASE("a timed wait returns as soon as the completions are there") {
    ring r(options_with({}, 4));
    prep_nop_with(r, 1);
    prep_nop_with(r, 2);
    const auto start = std::chrono::steady_clock::now();
    CHECK(r.submit_and_wait(2, 5s) == 2);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK(r.cq().ready() == 2);
    CHECK(test::reap(r, 2).size() == 2);
}

TEST_CASE("a batched wait returns after its window with the one completion that came") {
    ring r(options_with({}, 4));
    if (!r.features().contains(feature::min_timeout)) {
        test::skip("batched waits need IORING_FEAT_MIN_TIMEOUT (Linux 6.12)");
        return;
    }
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    char byte[2] = {};
    for (int i = 0; i < 2; ++i) {
        io_uring_sqe& sqe = test::sqe_of(r);
        prep_read(sqe, fds[0], std::as_writable_bytes(std::span(&byte[i], 1)), 0);
        set_user_data(sqe, static_cast<std::uint64_t>(i) + 1);
    }
    REQUIRE(::write(fds[1], "a", 1) == 1);
    const auto start = std::chrono::steady_clock::now();
    CHECK(r.submit_and_wait_batch(2, 20ms, 5s) == 2); // both submitted
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 15ms); // it waited for the second...
    CHECK(took < 4s);    // ...only for the window, not the overall timeout
    CHECK(test::reap(r, 1).size() == 1);
    REQUIRE(::write(fds[1], "b", 1) == 1);
    CHECK(r.submit_and_wait(1, 5s) >= 0);
    CHECK(test::reap(r, 1).size() == 1);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("a batched wait with nothing completing ends at its overall timeout") {
    ring r(options_with({}, 4));
    if (!r.features().contains(feature::min_timeout)) {
        test::skip("batched waits need IORING_FEAT_MIN_TIMEOUT (Linux 6.12)");
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    CHECK(r.submit_and_wait_batch(4, 5ms, 60ms) == -ETIME);
    CHECK(std::chrono::steady_clock::now() - start >= 50ms); // not at the end of the window
}

TEST_CASE("a timed wait with a zero timeout only polls") {
    ring r(options_with({}, 4));
    CHECK(r.submit_and_wait(1, 0ns) == -ETIME);
}

TEST_CASE("blocking iteration waits in the kernel for a completion that comes later") {
    ring r(options_with({}, 4));
    __kernel_timespec ts{0, 30'000'000};
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_timeout(sqe, &ts);
    set_user_data(sqe, 77);
    prep_nop_with(r, 78);
    const auto start = std::chrono::steady_clock::now();
    std::vector<completion> seen;
    for (const completion& c : r.wait_completions()) {
        seen.push_back(c);
        if (seen.size() == 2) break;
    }
    CHECK(std::chrono::steady_clock::now() - start >= 25ms);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].user_data == 78);
    CHECK(seen[1].user_data == 77);
    CHECK(seen[1].result == -ETIME);
    CHECK(r.cq().ready() == 0);
}

TEST_CASE("the ring fd is readable while completions wait") {
    ring r(options_with({}, 4));
    pollfd p{r.fd(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);
    prep_nop_with(r, 1);
    REQUIRE(r.submit_and_wait(1, 5s) == 1);
    CHECK(::poll(&p, 1, 0) == 1);
    CHECK((p.revents & POLLIN) != 0);
    CHECK(test::reap(r, 1).size() == 1);
}

// ---- Disabled rings
// -------------------------------------------------------------------------------

TEST_CASE("a ring set up disabled refuses to submit until it is enabled") {
    ring r(options_with(setup_flag::r_disabled, 4));
    prep_nop_with(r, 3);
    CHECK(r.submit() == -EBADFD);
    r.enable();
    const completion c = test::reap_one(r);
    CHECK(c.user_data == 3);
    CHECK(c.result == 0);
}

TEST_CASE("enabling a ring that is not disabled fails with EBADFD, named") {
    ring r(options_with({}, 4));
    const tram::error e = error_from([&] { r.enable(); });
    CHECK(e.errnum() == EBADFD);
    CHECK_THAT(e.what(), Contains("ENABLE_RINGS") && Contains("(EBADFD)"));
}

// ---- The registered ring fd
// ----------------------------------------------------------------------

TEST_CASE("the ring fd is registered by default and io_uring_enter goes through its index") {
    ring r(options_with({}, 4));
    REQUIRE(r.registered_index().has_value());
    CHECK(*r.registered_index() < 16);
    prep_nop_with(r, 11);
    CHECK(test::reap_one(r).user_data == 11);
}

TEST_CASE("a ring without a registered fd enters through the plain fd") {
    ring_options o = options_with({}, 4);
    o.register_ring_fd = false;
    ring r(o);
    CHECK_FALSE(r.registered_index().has_value());
    prep_nop_with(r, 12);
    CHECK(test::reap_one(r).user_data == 12);
}

TEST_CASE("destroying a ring frees its registered ring slot for the next ring") {
    // The kernel's table of registered rings has 16 slots per task; each ring must give its
    // slot back, or the 17th ring silently loses the registered fd.
    for (int i = 0; i < 40; ++i) {
        ring r(options_with({}, 2));
        INFO("ring number " << i);
        REQUIRE(r.registered_index().has_value());
    }
}

TEST_CASE("two live rings hold different registered ring slots") {
    ring a(options_with({}, 2));
    ring b(options_with({}, 2));
    REQUIRE(a.registered_index().has_value());
    REQUIRE(b.registered_index().has_value());
    CHECK(*a.registered_index() != *b.registered_index());
}

TEST_CASE("a ring's memory and fd are released when it is destroyed") {
    // Creating many rings in a row must not run out of descriptors or locked memory.
    for (int i = 0; i < 200; ++i) {
        ring r(options_with({}, 64));
        prep_nop_with(r, static_cast<std::uint64_t>(i));
        CHECK(test::reap_one(r).result == 0);
    }
}

// ---- SQPOLL
// ----------------------------------------------------------------------------------------

TEST_CASE("with SQPOLL the poller thread consumes SQEs, and is woken after it fell asleep") {
    ring_options o = options_with(setup_flag::sqpoll, 8);
    o.sq_thread_idle = 10ms;
    ring r(o);
    CHECK(r.flags().contains(setup_flag::sqpoll));
    prep_nop_with(r, 1);
    CHECK(r.submit() >= 0);
    CHECK(test::reap_one(r).user_data == 1);

    // Idle for longer than sq_thread_idle: the poller goes to sleep and says so.
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!r.sq().need_wakeup() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    CHECK(r.sq().need_wakeup());
    prep_nop_with(r, 2);
    prep_nop_with(r, 3);
    CHECK(r.submit() >= 0);
    const auto cs = test::reap(r, 2);
    CHECK(cs[0].user_data == 2);
    CHECK(cs[1].user_data == 3);
}

TEST_CASE("with SQPOLL pinned to a CPU the poller runs ops") {
    ring_options o = options_with(setup_flag::sqpoll, 4);
    o.sq_thread_cpu = 0;
    o.sq_thread_idle = 10ms;
    ring r(o);
    CHECK(r.flags().contains(setup_flag::sq_aff));
    prep_nop_with(r, 5);
    CHECK(test::reap_one(r).user_data == 5);
}

// ---- Task-run modes
// ----------------------------------------------------------------------------------

TEST_CASE("a DEFER_TASKRUN ring delivers completions when it waits") {
    ring r(options_with(setup_flag::single_issuer | setup_flag::defer_taskrun, 4));
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::byte buf[4];
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_read(sqe, fds[0], buf, current_position);
    set_user_data(sqe, 4);
    CHECK(r.submit() == 1);
    REQUIRE(::write(fds[1], "abcd", 4) == 4);
    const completion c = test::reap_one(r);
    CHECK(c.user_data == 4);
    CHECK(c.result == 4);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("a COOP_TASKRUN ring with TASKRUN_FLAG flags pending task work and flushes it") {
    ring r(options_with(setup_flag::coop_taskrun | setup_flag::taskrun_flag, 4));
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::byte buf[4];
    io_uring_sqe& sqe = test::sqe_of(r);
    prep_read(sqe, fds[0], buf, current_position);
    set_user_data(sqe, 6);
    CHECK(r.submit() == 1);
    REQUIRE(::write(fds[1], "abcd", 4) == 4);
    const completion c = test::reap_one(r);
    CHECK(c.result == 4);
    ::close(fds[0]);
    ::close(fds[1]);
}

// ---- Big entries and NO_SQARRAY
// ----------------------------------------------------------------------

TEST_CASE("SQE128 and CQE32 rings lay out double-sized entries correctly") {
    ring r(options_with(setup_flag::sqe128 | setup_flag::cqe32, 4));
    for (std::uint64_t round = 0; round < 3; ++round) {
        for (std::uint64_t i = 0; i < 4; ++i)
            prep_nop_with(r, round * 4 + i);
        const auto cs = test::reap(r, 4);
        for (std::uint64_t i = 0; i < 4; ++i) {
            CHECK(cs[i].user_data == round * 4 + i);
            CHECK(cs[i].result == 0);
            CHECK(cs[i].extra == std::array<std::uint64_t, 2>{0, 0});
        }
    }
}

TEST_CASE("a CQE32 ring copies both extra words of each 32-byte CQE out by value") {
    ring r(options_with(setup_flag::sqe128 | setup_flag::cqe32, 4));
    prep_nop_cqe32(*r.get_sqe(), 0x1111'2222'3333'4444, 0x5555'6666'7777'8888);
    const auto probe_cqe = test::reap(r, 1);
    if (probe_cqe[0].result == -EINVAL) {
        test::skip("IORING_NOP_CQE32 needs Linux 6.18");
        return;
    }
    for (std::uint64_t round = 0; round < 3; ++round) { // around the ring, twice over
        for (std::uint64_t i = 0; i < 4; ++i) {
            io_uring_sqe& sqe = *r.get_sqe();
            prep_nop_cqe32(sqe, round * 100 + i, ~(round * 100 + i));
            sqe.user_data = i;
        }
        const auto cs = test::reap(r, 4);
        for (std::uint64_t i = 0; i < 4; ++i) {
            CHECK(cs[i].result == 0);
            CHECK(cs[i].extra == std::array<std::uint64_t, 2>{round * 100 + cs[i].user_data,
                                                              ~(round * 100 + cs[i].user_data)});
        }
    }
}

TEST_CASE("a NOP can inject the result its CQE carries") {
    ring r(options_with({}, 4));
    prep_nop_result(*r.get_sqe(), -ENOSPC);
    const auto cs = test::reap(r, 1);
    if (cs[0].result == 0) { // an older kernel ignores the flag
        test::skip("IORING_NOP_INJECT_RESULT needs Linux 6.12");
        return;
    }
    CHECK(cs[0].result == -ENOSPC);
}

TEST_CASE("a NO_SQARRAY ring submits in ring order without the indirection array") {
    ring r(options_with(setup_flag::no_sqarray, 4));
    std::uint64_t next = 0;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 3; ++i)
            prep_nop_with(r, next++);
        const auto cs = test::reap(r, 3);
        for (int i = 0; i < 3; ++i)
            CHECK(cs[i].user_data == next - 3 + i);
    }
    CHECK(r.sq().dropped() == 0);
}

TEST_CASE("a ring set up in one thread can be driven from another") {
    // The registered ring index belongs to the thread that registered it; another thread
    // must enter through the plain fd.
    ring r(options_with({}, 4));
    REQUIRE(r.registered_index().has_value());
    std::vector<completion> seen;
    std::thread other([&] {
        CHECK_FALSE(r.registered_index().has_value());
        prep_nop_with(r, 21);
        CHECK(r.submit_and_wait(1, 5s) == 1);
        for (const completion& c : r.completions())
            seen.push_back(c);
    });
    other.join();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].user_data == 21);
}

TEST_CASE("another thread's ring in the same registered slot is never entered by mistake") {
    ring mine(options_with({}, 4));
    std::thread other([&] {
        ring theirs(options_with({}, 4)); // likely takes the same slot number in its thread
        prep_nop_with(mine, 31);
        CHECK(mine.submit_and_wait(1, 5s) == 1);
        CHECK(theirs.cq().ready() == 0);
        CHECK(mine.cq().ready() == 1);
    });
    other.join();
    CHECK(test::reap_one(mine).user_data == 31);
}
