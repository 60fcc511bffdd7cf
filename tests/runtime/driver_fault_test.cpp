// Tests of runtime/src/driver.cpp when its system calls fail: io_uring_setup refused (with
// and without a fallback), io_uring_enter interrupted or short of resources, short submits
// (lib/fault_injection.hpp), and too few file descriptors for the driver's own setup.
#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include "fault_injection.hpp"
#include "skip.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

std::optional<error> driver_error(const driver_options& options = {}) {
    try {
        driver d(options);
    } catch (const error& e) {
        return e;
    }
    return std::nullopt;
}

// Per operation, how often its awaiting coroutine resumed: each must end at exactly 1.
struct resume_counts {
    explicit resume_counts(std::size_t ops)
        : counts(ops, 0) {}
    std::vector<int> counts;
    std::size_t finished_tasks = 0;

    [[nodiscard]] bool each_once() const {
        return std::all_of(counts.begin(), counts.end(), [](int n) { return n == 1; });
    }
};

// `per_task` nops in sequence, operation ids [first, first + per_task).
task<> nops(std::size_t first, std::size_t per_task, resume_counts& seen, bool with_timeout) {
    for (std::size_t i = first; i < first + per_task; ++i) {
        const io_result r = with_timeout ? co_await nop().with_timeout(10s) : co_await nop();
        if (r.ok())
            ++seen.counts[i];
        else
            seen.counts[i] += 100; // an error counts as a failure too
    }
    ++seen.finished_tasks;
}

task<io_result> read_byte(int fd, std::byte* into) {
    co_return co_await make_operation([fd, into](io_uring_sqe& sqe) noexcept {
        prep_read(sqe, fd, std::span(into, 1), current_position);
    });
}

task<io_result> write_byte(int fd, const std::byte* from) {
    co_return co_await make_operation([fd, from](io_uring_sqe& sqe) noexcept {
        prep_write(sqe, fd, std::span(from, 1), current_position);
    });
}

// One byte through a pipe per round: a read that waits in the kernel, and the write.
task<> pipe_rounds(std::size_t first, std::size_t rounds, resume_counts& seen) {
    test::fd_pair p = test::make_pipe();
    for (std::size_t i = first; i < first + rounds; ++i) {
        std::byte in{};
        const std::byte out{42};
        auto [r, w] =
            co_await when_all(read_byte(p.first.get(), &in), write_byte(p.second.get(), &out));
        if (r.ok() && r.value() == 1 && w.ok() && w.value() == 1 && in == out)
            ++seen.counts[i];
        else
            seen.counts[i] += 100;
    }
    ++seen.finished_tasks;
}

// Runs turns until `tasks` tasks finished or `limit` passed.
void run_until_finished(driver& d, const resume_counts& seen, std::size_t tasks,
                        std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (seen.finished_tasks < tasks && std::chrono::steady_clock::now() < deadline) {
        d.run_turn(true);
    }
    REQUIRE(seen.finished_tasks == tasks);
}

// The lowest descriptor number not in use.
int lowest_free_fd() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ::close(fd);
    return fd;
}

// Lowers the soft RLIMIT_NOFILE for a scope and restores it after.
class nofile_limit {
public:
    explicit nofile_limit(rlim_t soft) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }
    nofile_limit(const nofile_limit&) = delete;
    nofile_limit& operator=(const nofile_limit&) = delete;
    ~nofile_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_{};
};

} // namespace

TEST_CASE("a driver whose setup fails with ENOSYS, EPERM or ENOMEM reports why, without fallback") {
    const auto [errnum, cause] = GENERATE(table<int, const char*>({
        {ENOSYS, "no io_uring"},
        {EPERM, "kernel.io_uring_disabled sysctl"},
        {ENOMEM, "RLIMIT_MEMLOCK"},
    }));
    testing::fault_scope faults;
    testing::fail_setups(errnum, 10);
    const auto e = driver_error();
    REQUIRE(e);
    CHECK(e->errnum() == errnum);
    CHECK_THAT(e->what(), Contains("io_uring_setup") && Contains(cause));
    // Only EINVAL (flags this kernel does not know) makes the driver try simpler flags.
    CHECK(testing::faults_seen().setups == 1);
}

TEST_CASE("a driver falls back through simpler setup flags while the kernel answers EINVAL") {
    testing::fault_scope faults;
    testing::fail_setups(EINVAL, 2);
    driver d;
    CHECK(testing::faults_seen().setups == 3);
    // The third candidate: no DEFER_TASKRUN, no SINGLE_ISSUER.
    CHECK(d.ring().flags().contains(setup_flag::coop_taskrun));
    CHECK_FALSE(d.ring().flags().contains(setup_flag::defer_taskrun));
    CHECK_FALSE(d.ring().flags().contains(setup_flag::single_issuer));
    CHECK(run(d, []() -> task<bool> { co_return (co_await nop()).ok(); }()));
}

TEST_CASE("a driver whose every setup is rejected reports the plain setup's EINVAL") {
    testing::fault_scope faults;
    testing::fail_setups(EINVAL, 100);
    const auto e = driver_error();
    REQUIRE(e);
    CHECK(e->errnum() == EINVAL);
    CHECK_THAT(e->what(), Contains("io_uring_setup") && Contains("invalid parameters"));
    CHECK(testing::faults_seen().setups == 5);
}

TEST_CASE("an SQPOLL driver retries without SINGLE_ISSUER when the kernel rejects the pair") {
    testing::fault_scope faults;
    testing::fail_setups(EINVAL, 1);
    std::optional<driver> d;
    try {
        d.emplace(driver_options{.sqpoll = true});
    } catch (const error& e) {
        // SQPOLL itself may be refused here (e.g. in a sandbox): then it is not ours to test.
        test::skip(std::string("SQPOLL is not available: ") + e.what());
        return;
    }
    CHECK(testing::faults_seen().setups == 2);
    CHECK(d->ring().flags().contains(setup_flag::sqpoll));
    CHECK_FALSE(d->ring().flags().contains(setup_flag::single_issuer));
    CHECK(run(*d, []() -> task<bool> { co_return (co_await nop()).ok(); }()));
}

TEST_CASE(
    "the driver retries enters failing with EINTR, EAGAIN or EBUSY and each op completes once") {
    const int errnum = GENERATE(EINTR, EAGAIN, EBUSY);
    const bool with_timeout = GENERATE(false, true);
    constexpr std::size_t tasks = 100;
    constexpr std::size_t per_task = 100; // 10,000 operations
    testing::fault_scope faults;
    driver d(driver_options{.entries = 64});
    resume_counts seen(tasks * per_task);
    for (std::size_t t = 0; t < tasks; ++t)
        spawn(d, nops(t * per_task, per_task, seen, with_timeout));
    testing::fail_enters(errnum, 1'000'000, 3);
    run_until_finished(d, seen, tasks);
    const testing::fault_counters faults_seen = testing::faults_seen();
    testing::reset_faults();
    CHECK(seen.each_once());
    CHECK(d.in_flight() == 0);
    CHECK(d.idle());
    CHECK(faults_seen.enter_failures >= faults_seen.enters / 3 - 1); // every third failed
    // Every SQE reached the kernel exactly once: the ops (two each with a timeout) and the
    // wake-up poll; every CQE was reaped (the wake-up poll has posted none).
    const std::uint64_t sqes_per_op = with_timeout ? 2 : 1;
    CHECK(d.stats().sqes_submitted == tasks * per_task * sqes_per_op + 1);
    CHECK(d.stats().cqes_reaped == tasks * per_task * sqes_per_op);
    CHECK(d.stats().enters == faults_seen.enters);
}

TEST_CASE("short submits leave the rest for later turns and every op still completes once") {
    const unsigned max_submit = GENERATE(1U, 3U, 7U);
    const bool with_timeout = GENERATE(false, true);
    constexpr std::size_t tasks = 200;
    constexpr std::size_t per_task = 50; // 10,000 operations
    testing::fault_scope faults;
    driver d(driver_options{.entries = 64});
    resume_counts seen(tasks * per_task);
    for (std::size_t t = 0; t < tasks; ++t)
        spawn(d, nops(t * per_task, per_task, seen, with_timeout));
    testing::short_submits(max_submit, 1'000'000, 2);
    run_until_finished(d, seen, tasks);
    const testing::fault_counters faults_seen = testing::faults_seen();
    testing::reset_faults();
    CHECK(seen.each_once());
    CHECK(d.in_flight() == 0);
    CHECK(faults_seen.short_submits > 100);
    const std::uint64_t sqes_per_op = with_timeout ? 2 : 1;
    CHECK(d.stats().sqes_submitted == tasks * per_task * sqes_per_op + 1);
    CHECK(d.stats().cqes_reaped == tasks * per_task * sqes_per_op);
}

TEST_CASE("pipe reads and writes under enter failures and short submits each complete once") {
    constexpr std::size_t tasks = 50;
    constexpr std::size_t rounds = 100;
    testing::fault_scope faults;
    // 256 CQEs: 128 slots, room for every read and write at once (a read that holds a slot
    // while its write waits for one could wait forever).
    driver d(driver_options{.entries = 64});
    resume_counts seen(tasks * rounds);
    for (std::size_t t = 0; t < tasks; ++t)
        spawn(d, pipe_rounds(t * rounds, rounds, seen));
    testing::fail_enters(EINTR, 1'000'000, 4);
    testing::short_submits(2, 1'000'000, 3);
    run_until_finished(d, seen, tasks);
    testing::reset_faults();
    CHECK(seen.each_once());
    CHECK(d.in_flight() == 0);
    CHECK(d.stats().cqes_reaped == 2 * tasks * rounds);
}

TEST_CASE("a driver destroyed while its enters fail with EINTR still waits for every CQE") {
    testing::fault_scope faults;
    test::fd_pair p = test::make_pipe();
    std::vector<std::byte> bytes(16);
    int resumed = 0;
    {
        driver d;
        for (std::byte& b : bytes) {
            spawn(d, [](int fd, std::byte* into, int& resumed) -> task<> {
                (void)co_await make_operation([fd, into](io_uring_sqe& sqe) noexcept {
                    prep_read(sqe, fd, std::span(into, 1), current_position);
                });
                ++resumed; // never: the reads wait until the driver is destroyed
            }(p.first.get(), &b, resumed));
        }
        d.run_turn(false);
        d.run_turn(false);
        REQUIRE(d.in_flight() == bytes.size());
        testing::fail_enters(EINTR, 20);
    }
    CHECK(resumed == 0);
    CHECK(testing::faults_seen().enter_failures == 20);
}

TEST_CASE("an enter failing with EBADR is reported as completions the kernel dropped") {
    testing::fault_scope faults;
    driver d;
    spawn(d, []() -> task<> { (void)co_await nop(); }());
    d.run_turn(false);
    testing::fail_enters(EBADR);
    try {
        d.run_turn(false);
        FAIL("the turn did not throw");
    } catch (const error& e) {
        CHECK(e.errnum() == EBADR);
        CHECK_THAT(e.what(), Contains("io_uring_enter") && Contains("CQ overflowed"));
    }
    testing::reset_faults();
    for (int i = 0; i < 100 && !d.idle(); ++i)
        d.run_turn(true);
    CHECK(d.idle());
}

TEST_CASE("a driver with no descriptor left for its ring reports EMFILE") {
    const nofile_limit limit(static_cast<rlim_t>(lowest_free_fd()));
    const auto e = driver_error();
    REQUIRE(e);
    CHECK(e->errnum() == EMFILE);
    CHECK_THAT(e->what(), Contains("io_uring_setup") && Contains("no file descriptor left") &&
                              Contains("(EMFILE)"));
}

TEST_CASE("a driver with a descriptor for its ring but none for its eventfd reports EMFILE") {
    const int first_free = lowest_free_fd();
    std::optional<error> e;
    {
        const nofile_limit limit(static_cast<rlim_t>(first_free + 1));
        e = driver_error();
    }
    REQUIRE(e);
    CHECK(e->errnum() == EMFILE);
    CHECK_THAT(e->what(), Contains("eventfd") && Contains("(EMFILE)"));
    CHECK(lowest_free_fd() == first_free); // the ring's descriptor was closed again
}
