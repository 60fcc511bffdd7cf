// Tests of runtime/src/driver.cpp: batching, the loop's system calls, cancellation, timeouts,
// slots, the SQ filling up, embedding, shutdown.
#include <tram/runtime.hpp>

#include "awaiting.hpp"
#include "skip.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

// Reads one byte from `fd` through the ring and reports the result.
task<io_result> read_one(int fd, std::byte* into) {
    co_return co_await make_operation([fd, into](io_uring_sqe& sqe) noexcept {
        prep_read(sqe, fd, std::span(into, 1), current_position);
    });
}

using test::read_op;

void write_byte(int fd) {
    const char c = 'x';
    REQUIRE(::write(fd, &c, 1) == 1);
}

// Runs turns until `done` or `max_turns` passed; returns whether `done` became true.
template <typename Pred>
bool turn_until(driver& d, Pred done, int max_turns = 10'000) {
    for (int i = 0; i < max_turns && !done(); ++i)
        d.run_turn(false);
    return done();
}

} // namespace

TEST_CASE("a task awaiting a nop through the driver gets its result") {
    driver d;
    const int value = run(d, []() -> task<int> {
        io_result r = co_await nop();
        co_return r.ok() ? 7 : -1;
    }());
    CHECK(value == 7);
}

TEST_CASE("an SQPOLL driver submits a thousand awaited nops without an io_uring_enter per op") {
    std::optional<driver> d;
    try {
        d.emplace(driver_options{.sqpoll = true, .sqpoll_idle = std::chrono::milliseconds(1000)});
    } catch (const error& e) {
        test::skip(std::string("SQPOLL is refused here: ") + e.what());
        return;
    }
    constexpr int tasks = 100;
    constexpr int nops_each = 10;
    int done = 0;
    int failed = 0;
    for (int i = 0; i < tasks; ++i) {
        // No co_await inside a Catch2 assertion: its macro names the expression twice, and
        // GCC 12 then awaits more than once.
        spawn(*d, [](int& done, int& failed) -> task<> {
            for (int n = 0; n < nops_each; ++n) {
                const io_result r = co_await nop();
                if (!r.ok()) ++failed;
            }
            ++done;
        }(done, failed));
    }
    d->run_turn(false); // arms the wake-up poll and prepares the first nops
    const driver_stats before = d->stats();
    // A turn may enter only to wake a sleeping poller (or to flush task work or an overflow):
    // with the poller awake, the loop submits and reaps without a system call. On a loaded
    // machine the poller may not have run yet, so turns that see NEED_WAKEUP are allowed one.
    int quiet_turns = 0;
    int enters_in_quiet_turns = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (done < tasks && std::chrono::steady_clock::now() < deadline) {
        const submission_queue& sq = d->ring().sq();
        const bool quiet = !sq.need_wakeup() && !sq.taskrun() && !sq.cq_overflow();
        const std::uint64_t enters = d->stats().enters;
        d->run_turn(false); // never waits
        if (quiet) {
            ++quiet_turns;
            enters_in_quiet_turns += static_cast<int>(d->stats().enters - enters);
        }
    }
    REQUIRE(done == tasks);
    CHECK(failed == 0);
    const driver_stats after = d->stats();
    INFO("enters " << after.enters - before.enters << " in " << after.turns - before.turns
                   << " turns, " << quiet_turns << " of them with the poller awake");
    CHECK(quiet_turns > 0);
    CHECK(enters_in_quiet_turns == 0);
    CHECK(after.sqes_submitted - before.sqes_submitted ==
          tasks * nops_each); // the first turn prepared, not published, the first nops
}

TEST_CASE("a thousand reads prepared in one turn are submitted by one io_uring_enter") {
    constexpr int count = 1000;
    driver d(driver_options{.entries = 1024});
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < count; ++i)
        pipes.push_back(test::make_pipe());
    std::vector<std::byte> bytes(count);
    int completed = 0;
    for (int i = 0; i < count; ++i) {
        spawn(d, [](int fd, std::byte* into, int& done) -> task<> {
            const io_result r = co_await read_op(fd, into);
            if (r.ok() && r.value() == 1) ++done;
        }(pipes[i].first.get(), &bytes[i], completed));
    }
    d.run_turn(false); // runs the spawned tasks: each prepares its read
    const driver_stats before = d.stats();
    d.run_turn(false); // submits them
    const driver_stats after = d.stats();
    CHECK(after.enters - before.enters == 1);
    CHECK(after.sqes_submitted - before.sqes_submitted == count);
    CHECK(d.in_flight() == count);

    for (auto& p : pipes)
        write_byte(p.second.get());
    REQUIRE(turn_until(d, [&] { return completed == count; }));
    CHECK(d.stats().cqes_reaped - after.cqes_reaped >= count);
    CHECK(d.in_flight() == 0);
}

TEST_CASE(
    "a turn with completions already waiting and nothing to submit enters the kernel zero times") {
    // COOP_TASKRUN (pollable): completions are posted when this thread next leaves the
    // kernel, here on return from write(2), without an io_uring_enter.
    driver d(driver_options{.pollable = true});
    auto p = test::make_pipe();
    std::byte b{};
    bool done = false;
    spawn(d, [](int fd, std::byte* into, bool& flag) -> task<> {
        co_await read_op(fd, into);
        flag = true;
    }(p.first.get(), &b, done));
    d.run_turn(false);
    d.run_turn(false);
    REQUIRE(d.in_flight() == 1);
    write_byte(p.second.get());
    for (int i = 0; i < 100 && d.ring().cq().ready() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    REQUIRE(d.ring().cq().ready() == 1);
    const driver_stats before = d.stats();
    d.run_turn(true);
    CHECK(d.stats().enters == before.enters);
    CHECK(d.stats().cqes_reaped == before.cqes_reaped + 1);
    CHECK(done);
}

TEST_CASE("a stop request cancels a read blocked on an empty pipe and the task resumes cancelled") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    std::byte b{};
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(5ms);
        s.request_stop();
    }(stop));
    const io_result r = run(d, read_one(p.first.get(), &b).with_stop_token(stop.get_token()));
    CHECK(r.cancelled());
    CHECK_FALSE(r.timed_out());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a stop request from another thread cancels a read in flight") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    std::byte b{};
    std::thread canceller([&] {
        std::this_thread::sleep_for(20ms);
        stop.request_stop();
    });
    const io_result r = run(d, read_one(p.first.get(), &b).with_stop_token(stop.get_token()));
    canceller.join();
    CHECK(r.cancelled());
    CHECK(d.in_flight() == 0);
}

TEST_CASE("an operation whose stop was requested before it started never reaches the kernel") {
    driver d;
    auto p = test::make_pipe();
    std::stop_source stop;
    stop.request_stop();
    std::byte b{};
    const io_result r = run(d, read_one(p.first.get(), &b).with_stop_token(stop.get_token()));
    CHECK(r.cancelled());
    CHECK(d.stats().sqes_submitted <= 1); // the driver's own wake-up poll at most
}

TEST_CASE("operations beyond the in-flight limit wait for a slot and can be cancelled there") {
    driver d(driver_options{.entries = 4, .cq_entries = 8, .max_in_flight = 4});
    REQUIRE(d.in_flight_limit() == 4);
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < 6; ++i)
        pipes.push_back(test::make_pipe());
    std::array<std::byte, 6> bytes{};
    std::array<std::stop_source, 6> stops;
    std::array<std::optional<io_result>, 6> results;
    for (int i = 0; i < 6; ++i) {
        spawn(
            d,
            [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
                out = co_await read_op(fd, into);
            }(pipes[i].first.get(), &bytes[i], results[i]),
            stops[i].get_token());
    }
    d.run_turn(false);
    d.run_turn(false);
    CHECK(d.in_flight() == 4);

    stops[5].request_stop(); // waiting for a slot: cancelled without touching the kernel
    REQUIRE(turn_until(d, [&] { return results[5].has_value(); }));
    CHECK(results[5]->cancelled());
    CHECK(d.in_flight() == 4);

    write_byte(pipes[0].second.get()); // frees a slot: the fifth read starts
    REQUIRE(turn_until(d, [&] { return results[0].has_value() && d.in_flight() == 4; }));
    CHECK(results[0]->ok());
    for (int i = 1; i < 5; ++i)
        write_byte(pipes[i].second.get());
    REQUIRE(turn_until(d, [&] { return d.in_flight() == 0; }));
    for (int i = 0; i < 5; ++i) {
        REQUIRE(results[i].has_value());
        CHECK(results[i]->value() == 1);
    }
}

TEST_CASE("an operation with a timeout that expires ends timed out, not cancelled") {
    driver d;
    auto p = test::make_pipe();
    std::byte b{};
    const auto start = std::chrono::steady_clock::now();
    const io_result r = run(d, [](int fd, std::byte* into) -> task<io_result> {
        co_return co_await read_op(fd, into).with_timeout(20ms);
    }(p.first.get(), &b));
    CHECK(r.timed_out());
    CHECK_FALSE(r.cancelled());
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
    CHECK(d.in_flight() == 0);
}

TEST_CASE("an operation that completes before its timeout keeps its result") {
    driver d;
    auto p = test::make_pipe();
    write_byte(p.second.get());
    std::byte b{};
    const io_result r = run(d, [](int fd, std::byte* into) -> task<io_result> {
        co_return co_await read_op(fd, into).with_timeout(5s);
    }(p.first.get(), &b));
    CHECK(r.ok());
    CHECK(r.value() == 1);
    CHECK(b == std::byte{'x'});
}

TEST_CASE("a full submission queue is submitted early and the turn goes on") {
    driver d(driver_options{.entries = 4, .cq_entries = 512});
    std::vector<task<io_result>> nops;
    for (int i = 0; i < 100; ++i) {
        nops.push_back([]() -> task<io_result> { co_return co_await nop(); }());
    }
    const auto results = run(d, when_all(std::move(nops)));
    REQUIRE(results.size() == 100);
    for (const io_result& r : results)
        CHECK(r.ok());
    CHECK(d.stats().enters > 1);
}

TEST_CASE("run rejects a task that waits for something nothing will do") {
    driver d;
    auto forever = []() -> task<> { co_await std::suspend_always{}; };
    CHECK_THROWS_AS(run(d, forever()), std::logic_error);
}

TEST_CASE("an exception escaping a detached task cancels the main task and is rethrown by run") {
    driver d;
    auto p = test::make_pipe();
    std::byte b{};
    std::optional<io_result> main_result;
    spawn(d, []() -> task<> {
        co_await nop();
        throw std::runtime_error("detached failure");
    }());
    auto main_task = [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
        out = co_await read_op(fd, into);
    };
    CHECK_THROWS_WITH(run(d, main_task(p.first.get(), &b, main_result)), "detached failure");
    REQUIRE(main_result.has_value());
    CHECK(main_result->cancelled());
}

TEST_CASE("a driver destroyed with operations in flight cancels them and destroys their tasks") {
    auto destroyed = std::make_shared<int>(0);
    struct counter {
        std::shared_ptr<int> count;
        ~counter() { ++*count; }
    };
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < 10; ++i)
        pipes.push_back(test::make_pipe());
    {
        driver d;
        for (auto& p : pipes) {
            spawn(d, [](int fd, std::shared_ptr<int> count) -> task<> {
                counter c{std::move(count)};
                std::byte b{};
                co_await read_op(fd, &b);
                co_await sleep_for(1h); // never reached: the read is cancelled at shutdown
            }(p.first.get(), destroyed));
        }
        d.run_turn(false);
        d.run_turn(false);
        CHECK(d.in_flight() == 10);
    }
    CHECK(*destroyed == 10);
}

TEST_CASE("the driver runs inside a plain epoll loop that also serves a timer") {
    driver d(driver_options{.pollable = true});
    auto p = test::make_pipe();
    unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    unique_fd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    REQUIRE(ep);
    REQUIRE(timer);
    itimerspec its{};
    its.it_value.tv_nsec = 10'000'000; // the timer fires once after 10 ms
    REQUIRE(::timerfd_settime(timer.get(), 0, &its, nullptr) == 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = d.fd();
    REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, d.fd(), &ev) == 0);
    ev.data.fd = timer.get();
    REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, timer.get(), &ev) == 0);

    std::byte b{};
    std::optional<io_result> result;
    spawn(d, [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
        out = co_await read_op(fd, into);
    }(p.first.get(), &b, result));

    // The host sleeps in epoll_wait with a timeout longer than the test's deadline: only the
    // read completing while it sleeps can bring it back in time, through the ring fd turning
    // readable or, with COOP_TASKRUN, the kernel's task-work notification ending the wait with
    // EINTR (the embedding contract in the README covers both).
    bool timer_fired = false;
    int ring_wake_ups = 0;
    std::atomic<ssize_t> written{0};
    std::thread writer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (!result && std::chrono::steady_clock::now() < deadline) {
        while (d.has_pending_work())
            d.run_once();
        if (result) break;
        std::array<epoll_event, 4> events{};
        const int n = ::epoll_wait(ep.get(), events.data(), 4, 5000);
        if (n < 0) {
            REQUIRE(errno == EINTR);
            ++ring_wake_ups;
        }
        for (int k = 0; k < n; ++k) {
            if (events[k].data.fd == timer.get()) {
                std::uint64_t ticks = 0;
                REQUIRE(::read(timer.get(), &ticks, sizeof ticks) == sizeof ticks);
                timer_fired = true;
                // The host's timer starts what feeds the tram task, later, from elsewhere.
                // No Catch2 assertion on that thread: Catch2 is not thread-safe.
                writer = std::thread([fd = p.second.get(), &written] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    const char c = 'x';
                    written = ::write(fd, &c, 1);
                });
            } else {
                ++ring_wake_ups;
                d.run_once();
            }
        }
    }
    if (writer.joinable()) writer.join();
    CHECK(written.load() == 1);
    REQUIRE(result.has_value()); // before the deadline: the sleeping host was woken
    CHECK(result->value() == 1);
    CHECK(timer_fired);
    CHECK(ring_wake_ups > 0);
}

namespace {

// Counts the CQEs of SQEs prepared by hand, outside the in-flight slots.
class completion_counter final : public detail::operation_base {
public:
    completion_counter() noexcept
        : operation_base(&on_complete, nullptr, nullptr) {}
    int completions = 0;
    int failures = 0;

private:
    static void on_complete(operation_base& self, const completion& c) noexcept {
        auto& me = static_cast<completion_counter&>(self);
        ++me.completions;
        if (c.result != 0) ++me.failures;
    }
};

} // namespace

TEST_CASE("completions that overflow a tiny CQ all arrive, none lost") {
    // NOPs prepared by hand hold no in-flight slot, so nothing stops them from overflowing:
    // the kernel keeps the extra CQEs (NODROP) and the loop must flush them.
    driver d(driver_options{.entries = 4, .cq_entries = 8, .max_in_flight = 4});
    completion_counter counter;
    constexpr int count = 200;
    for (int i = 0; i < count; ++i) {
        io_uring_sqe& sqe = d.get_sqe(); // a full SQ is submitted on the spot
        prep_nop(sqe);
        set_user_data(sqe, counter.user_data());
    }
    d.run_turn(false); // submits the rest
    CHECK(d.ring().sq().cq_overflow());
    REQUIRE(turn_until(
        d, [&] { return counter.completions == count; }, 1000));
    CHECK(counter.failures == 0);
    CHECK(d.ring().cq().overflow() == 0);
    CHECK_FALSE(d.ring().sq().cq_overflow());
    CHECK(d.stats().cqes_reaped >= count);
}

TEST_CASE("a thousand reads cost one enter to submit and one waiting enter to collect") {
    constexpr int count = 1000;
    driver d(driver_options{.entries = 1024});
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < count; ++i)
        pipes.push_back(test::make_pipe());
    std::vector<std::byte> bytes(count);
    int completed = 0;
    std::vector<task<>> readers;
    for (int i = 0; i < count; ++i) {
        readers.push_back([](int fd, std::byte* into, int& done) -> task<> {
            if ((co_await read_op(fd, into)).value() == 1) ++done;
        }(pipes[i].first.get(), &bytes[i], completed));
    }
    // Data already waiting: every read completes when submitted.
    for (auto& p : pipes)
        write_byte(p.second.get());
    run(d, when_all(std::move(readers)));
    CHECK(completed == count);
    const driver_stats& s = d.stats();
    CHECK(s.sqes_submitted >= count);
    CHECK(s.cqes_reaped >= count);
    // The reads' turn submits them all at once; their completions need at most one more.
    CHECK(s.enters <= 4);
    CHECK(s.waits <= 2);
}

TEST_CASE("a stop request from another thread cancels an operation waiting for a slot") {
    driver d(driver_options{.entries = 2, .cq_entries = 2, .max_in_flight = 1});
    REQUIRE(d.in_flight_limit() == 1);
    auto busy = test::make_pipe();
    auto waiting = test::make_pipe();
    std::byte b1{}, b2{};
    std::optional<io_result> first, second;
    std::stop_source stop;
    spawn(d, [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
        out = co_await read_op(fd, into);
    }(busy.first.get(), &b1, first));
    spawn(
        d,
        [](int fd, std::byte* into, std::optional<io_result>& out) -> task<> {
            out = co_await read_op(fd, into);
        }(waiting.first.get(), &b2, second),
        stop.get_token());
    d.run_turn(false);
    d.run_turn(false);
    REQUIRE(d.in_flight() == 1);
    std::thread([&] { stop.request_stop(); }).join();
    REQUIRE(turn_until(
        d, [&] { return second.has_value(); }, 100));
    CHECK(second->cancelled());
    CHECK_FALSE(first.has_value());
    write_byte(busy.second.get());
    REQUIRE(turn_until(
        d, [&] { return first.has_value(); }, 1000));
    CHECK(first->value() == 1);
    CHECK(d.in_flight() == 0);
}

TEST_CASE("a driver destroyed with sleeps, timed reads and queued operations cancels them all") {
    auto p = test::make_pipe();
    int finished = 0;
    {
        driver d(driver_options{
            .entries = 4, .cq_entries = 8, .max_in_flight = 4}); // 4 slots for 8 operations
        for (int i = 0; i < 8; ++i) {
            spawn(d, [](int fd, int kind, int& done) -> task<> {
                std::byte b{};
                if (kind == 0) {
                    co_await sleep_for(1h);
                } else {
                    co_await read_op(fd, &b).with_timeout(1h);
                }
                ++done; // not reached: frames are destroyed without being resumed
            }(p.first.get(), i % 2, finished));
        }
        d.run_turn(false);
        d.run_turn(false);
        CHECK(d.in_flight() == 4);
    }
    CHECK(finished == 0);
}

TEST_CASE("has_pending_work tells an embedding loop when to call run_once again") {
    driver d(driver_options{.pollable = true});
    // A fresh driver needs one turn before its host sleeps: the turn that arms the poll
    // through which other threads wake it.
    CHECK(d.has_pending_work());
    d.run_once();
    CHECK_FALSE(d.has_pending_work());
    bool done = false;
    spawn(d, [](bool& flag) -> task<> {
        co_await nop();
        flag = true;
    }(done));
    CHECK(d.has_pending_work()); // a task is ready to start
    for (int i = 0; i < 100 && !done; ++i) {
        if (!d.has_pending_work()) {
            pollfd pfd{d.fd(), POLLIN, 0};
            REQUIRE(::poll(&pfd, 1, 1000) == 1);
        }
        d.run_once();
    }
    CHECK(done);
    CHECK(d.idle());
}

TEST_CASE("the current driver is right after drivers are destroyed out of order") {
    auto first = std::make_unique<driver>();
    auto second = std::make_unique<driver>();
    CHECK(current_driver() == second.get());
    first.reset();
    CHECK(current_driver() == second.get());
    second.reset();
    CHECK(current_driver() == nullptr); // not the destroyed first one
}

TEST_CASE("more blocked operations than the CQ holds do not keep a new one from starting") {
    // With a cap derived from the CQ, these reads would hold every slot and the write that
    // ends them would wait for one forever.
    driver d(driver_options{.entries = 2, .cq_entries = 4});
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < 8; ++i)
        pipes.push_back(test::make_pipe());
    std::array<std::byte, 8> bytes{};
    int done = 0;
    for (int i = 0; i < 8; ++i) {
        spawn(d, [](int fd, std::byte* into, int& count) -> task<> {
            const io_result r = co_await read_op(fd, into);
            if (r.ok()) ++count;
        }(pipes[i].first.get(), &bytes[i], done));
    }
    spawn(d, [](std::vector<test::fd_pair>& ps) -> task<> {
        static const char byte = 'x';
        for (auto& p : ps) {
            co_await make_operation([fd = p.second.get()](io_uring_sqe& sqe) noexcept {
                prep_write(sqe, fd, std::as_bytes(std::span(&byte, 1)), current_position);
            });
        }
    }(pipes));
    REQUIRE(turn_until(d, [&] { return done == 8; }));
    CHECK(d.in_flight() == 0);
}

namespace {

// Pipe reads as the operations in flight: a completed IORING_OP_TIMEOUT would wake any wait
// whatever its count (the kernel's rule for timeouts), so sleeps cannot show batching.
struct pipe_reads {
    std::vector<test::fd_pair> pipes;
    std::array<char, 16> bytes{};
    explicit pipe_reads(driver& d, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            pipes.push_back(test::make_pipe());
            spawn(d, read_one(pipes.back().first.get(), bytes[i]));
        }
    }
    static task<> read_one(int fd, char& into) {
        (void)co_await make_operation([fd, &into](io_uring_sqe& sqe) noexcept {
            prep_read(sqe, fd, std::as_writable_bytes(std::span(&into, 1)), 0);
        });
    }
    void write(std::size_t i) const { REQUIRE(::write(pipes[i].second.get(), "x", 1) == 1); }
    // Writes to the first `n` pipes, `gap` apart, from another thread.
    std::thread write_later(std::size_t n, std::chrono::milliseconds gap) const {
        return std::thread([this, n, gap] {
            for (std::size_t i = 0; i < n; ++i) {
                std::this_thread::sleep_for(gap);
                (void)!::write(pipes[i].second.get(), "x", 1);
            }
        });
    }
    void finish(driver& d) {
        for (std::size_t i = 0; i < pipes.size(); ++i)
            (void)!::write(pipes[i].second.get(), "x", 1);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!d.idle() && std::chrono::steady_clock::now() < deadline)
            d.run_turn(true);
    }
};

bool has_min_timeout(driver& d) {
    if (d.ring().features().contains(feature::min_timeout)) return true;
    test::skip("batching needs IORING_FEAT_MIN_TIMEOUT (Linux 6.12)");
    return false;
}

} // namespace

TEST_CASE("with completion batching one wait reaps completions that arrive close together") {
    driver d(driver_options{.batch_completions = 4, .batch_window = 500ms});
    if (!has_min_timeout(d)) return;
    pipe_reads reads(d, 16); // 16 in flight: the loop waits for 4
    d.run_turn(false);       // the reads are prepared
    const auto before = d.stats();
    std::thread writer = reads.write_later(4, 3ms);
    d.run_turn(true); // submits, then waits
    writer.join();
    CHECK(d.stats().waits - before.waits == 1);
    // Without batching the wait would have ended with the first byte, alone.
    CHECK(d.stats().cqes_reaped - before.cqes_reaped == 4);
    reads.finish(d);
}

TEST_CASE("with completion batching a lone completion waits at most the window") {
    driver d(driver_options{.batch_completions = 8, .batch_window = 20ms});
    if (!has_min_timeout(d)) return;
    pipe_reads reads(d, 16);
    d.run_turn(false);
    const auto before = d.stats();
    reads.write(0);
    const auto start = std::chrono::steady_clock::now();
    d.run_turn(true);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(d.stats().cqes_reaped - before.cqes_reaped == 1);
    CHECK(waited >= 15ms); // held for the window, in case more came...
    CHECK(waited < 5s);    // ...but not until the batch was full
    reads.finish(d);
}

TEST_CASE("completion batching never holds back a loop with few operations in flight") {
    driver d(driver_options{.batch_completions = 8, .batch_window = 2s});
    pipe_reads reads(d, 2);
    d.run_turn(false);
    reads.write(0);
    const auto start = std::chrono::steady_clock::now();
    d.run_turn(true);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    reads.finish(d);
}
