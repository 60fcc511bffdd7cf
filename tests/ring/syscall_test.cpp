// Tests of lib/syscall.cpp, the ring layer's system-call boundary, through its test-only
// fault-injection seam (lib/fault_injection.hpp): what the ring reports when io_uring_setup
// fails, and how submits and waits behave when io_uring_enter fails or submits short.
#include <tram/error.hpp>
#include <tram/ring.hpp>
#include <tram/sqe.hpp>

#include "fault_injection.hpp"
#include "reap.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace tram;
using Catch::Matchers::Contains;

namespace {

// The tram::error that constructing a ring throws, or an empty one when it succeeds.
std::optional<error> setup_error(const ring_options& options = {}) {
    try {
        ring r(options);
    } catch (const error& e) {
        return e;
    }
    return std::nullopt;
}

void prep_nops(ring& r, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
        io_uring_sqe& sqe = test::sqe_of(r);
        prep_nop(sqe);
        set_user_data(sqe, std::uint64_t{i + 1});
    }
}

// Checks that `cqes` holds exactly one successful completion for each of user_data 1..count.
void check_each_once(const std::vector<completion>& cqes, unsigned count) {
    std::vector<int> seen(count + 1, 0);
    for (const completion& c : cqes) {
        REQUIRE(c.user_data >= 1);
        REQUIRE(c.user_data <= count);
        CHECK(c.result == 0);
        ++seen[c.user_data];
    }
    for (unsigned i = 1; i <= count; ++i)
        CHECK(seen[i] == 1);
}

} // namespace

TEST_CASE("with no fault armed the seam passes every call through and counts it") {
    testing::fault_scope faults;
    ring r;
    prep_nops(r, 3);
    CHECK(r.submit() == 3);
    check_each_once(test::reap(r, 3), 3);
    const testing::fault_counters seen = testing::faults_seen();
    CHECK(seen.setups == 1);
    CHECK(seen.enters >= 1);
    CHECK(seen.enter_failures == 0);
    CHECK(seen.short_submits == 0);
    CHECK(seen.setup_failures == 0);
}

TEST_CASE("io_uring_setup failing with ENOSYS is reported as a kernel without io_uring") {
    testing::fault_scope faults;
    testing::fail_setups(ENOSYS);
    const auto e = setup_error();
    REQUIRE(e);
    CHECK(e->errnum() == ENOSYS);
    CHECK_THAT(e->what(),
               Contains("io_uring_setup") && Contains("no io_uring") && Contains("(ENOSYS)"));
}

TEST_CASE("io_uring_setup failing with EPERM names the io_uring_disabled sysctl and sandboxes") {
    testing::fault_scope faults;
    testing::fail_setups(EPERM);
    const auto e = setup_error();
    REQUIRE(e);
    CHECK(e->errnum() == EPERM);
    CHECK_THAT(e->what(), Contains("kernel.io_uring_disabled sysctl") && Contains("sandbox") &&
                              Contains("(EPERM)"));
}

TEST_CASE("io_uring_setup failing with ENOMEM names RLIMIT_MEMLOCK and its value") {
    testing::fault_scope faults;
    testing::fail_setups(ENOMEM);
    const auto e = setup_error();
    REQUIRE(e);
    CHECK(e->errnum() == ENOMEM);
    CHECK_THAT(e->what(), Contains("RLIMIT_MEMLOCK is ") && Contains("(ENOMEM)"));
}

TEST_CASE("io_uring_setup failing with EINVAL names the entries and flags it was asked for") {
    testing::fault_scope faults;
    testing::fail_setups(EINVAL);
    const auto e = setup_error(ring_options{.entries = 64, .flags = setup_flag::submit_all});
    REQUIRE(e);
    CHECK(e->errnum() == EINVAL);
    CHECK_THAT(e->what(), Contains("entries 64") && Contains("submit_all") && Contains("(EINVAL)"));
}

TEST_CASE("an injected setup failure fires only as often as it was armed") {
    testing::fault_scope faults;
    testing::fail_setups(ENOMEM, 2);
    CHECK(setup_error());
    CHECK(setup_error());
    CHECK_FALSE(setup_error());
    CHECK(testing::faults_seen().setups == 3);
    CHECK(testing::faults_seen().setup_failures == 2);
}

TEST_CASE(
    "an enter failing with EINTR, EAGAIN or EBUSY submits nothing, and the next submits it all") {
    const int errnum = GENERATE(EINTR, EAGAIN, EBUSY);
    testing::fault_scope faults;
    ring r;
    prep_nops(r, 4);
    testing::fail_enters(errnum);
    CHECK(r.submit() == -errnum);
    CHECK(r.sq().pending() == 4);
    CHECK(r.cq().ready() == 0);
    CHECK(r.submit() == 4);
    check_each_once(test::reap(r, 4), 4);
    CHECK(testing::faults_seen().enter_failures == 1);
}

TEST_CASE("enter failures armed every third call hit the third and the sixth") {
    testing::fault_scope faults;
    ring r;
    std::vector<int> results;
    testing::fail_enters(EAGAIN, 2, 3);
    for (int i = 0; i < 8; ++i) {
        prep_nops(r, 1);
        results.push_back(r.submit());
    }
    CHECK(results == std::vector<int>{1, 1, -EAGAIN, 2, 1, -EAGAIN, 2, 1});
    const std::vector<completion> cqes = test::reap(r, 8);
    CHECK(cqes.size() == 8);
    CHECK(r.cq().ready() == 0);
}

TEST_CASE("a short submit leaves the rest in the SQ for the next submit, none lost or doubled") {
    testing::fault_scope faults;
    ring r;
    prep_nops(r, 8);
    testing::short_submits(3);
    CHECK(r.submit() == 3);
    CHECK(r.sq().pending() == 5);
    CHECK(r.submit() == 5);
    CHECK(r.sq().pending() == 0);
    check_each_once(test::reap(r, 8), 8);
    CHECK(testing::faults_seen().short_submits == 1);
}

TEST_CASE("short submits of one SQE at a time still deliver every completion once") {
    testing::fault_scope faults;
    ring r(ring_options{.entries = 64});
    prep_nops(r, 64);
    testing::short_submits(1, 1000);
    int submits = 0;
    while (r.sq().pending() > 0 && submits < 100) {
        CHECK(r.submit() == 1);
        ++submits;
    }
    CHECK(submits == 64);
    check_each_once(test::reap(r, 64), 64);
    CHECK(testing::faults_seen().short_submits == 63); // the last asked for only one
}

TEST_CASE("waiting for completions retries enters that fail with EINTR, EAGAIN or EBUSY") {
    testing::fault_scope faults;
    ring r;
    prep_nops(r, 1);
    testing::fail_enters(GENERATE(EINTR, EAGAIN, EBUSY), 3);
    std::vector<completion> got;
    for (const completion& c : r.wait_completions()) {
        got.push_back(c);
        break;
    }
    check_each_once(got, 1);
    CHECK(testing::faults_seen().enter_failures == 3);
}

TEST_CASE("waiting for completions reports an enter failing otherwise, naming io_uring_enter") {
    testing::fault_scope faults;
    ring r;
    prep_nops(r, 1);
    testing::fail_enters(EFAULT);
    try {
        for (const completion& c : r.wait_completions()) {
            (void)c;
            break;
        }
        FAIL("the wait did not throw");
    } catch (const error& e) {
        CHECK(e.errnum() == EFAULT);
        CHECK_THAT(e.what(), Contains("io_uring_enter") && Contains("(EFAULT)"));
    }
    CHECK(r.submit() == 1); // still prepared: the failed enter submitted nothing
    check_each_once(test::reap(r, 1), 1);
}

TEST_CASE("faults armed on one thread leave rings on other threads alone") {
    testing::fault_scope faults;
    testing::fail_setups(ENOSYS, 100);
    testing::fail_enters(EBUSY, 100);
    int submitted = 0;
    testing::fault_counters other_seen;
    std::thread other([&] {
        ring r;
        prep_nops(r, 2);
        submitted = r.submit();
        other_seen = testing::faults_seen();
    });
    other.join();
    CHECK(submitted == 2);
    CHECK(other_seen.setups == 1);
    CHECK(other_seen.enters == 1);
    CHECK(other_seen.setup_failures == 0);
    CHECK(other_seen.enter_failures == 0);
    CHECK(setup_error()); // still armed here
}
