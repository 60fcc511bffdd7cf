// Tests of runtime/src/driver.cpp under load: a CQ far too small for what is in flight (the
// kernel's overflow list and the loop's flush), and storms of cancellations at every point
// of an operation's life, from the driver's thread and from another one. Each operation's
// coroutine must resume exactly once, and nothing may stay in flight afterwards.
#include <tram/runtime.hpp>

#include "fault_injection.hpp"
#include "sockets.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <random>
#include <stop_token>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

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

// Counts the frames of the tasks below that are alive, to show none leaks.
struct live_frame {
    explicit live_frame(std::atomic<int>& live) noexcept
        : live_(&live) {
        ++*live_;
    }
    live_frame(const live_frame&) = delete;
    live_frame& operator=(const live_frame&) = delete;
    ~live_frame() { --*live_; }
    std::atomic<int>* live_;
};

// Runs turns until `done()` or `limit` passed; returns `done()`.
template <typename Done>
bool run_until(driver& d, Done done, std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        d.run_turn(true);
    return done();
}

// ---- CQ overflow --------------------------------------------------------------------------

constexpr unsigned message_tag = 2; // user_data tag of the MSG_RING CQEs (1 is the driver's)

// A multishot poll on an eventfd that the tasks keep writing to, and the receiver of the
// MSG_RING completions that a burst posts to the driver's own ring: CQEs that hold no
// in-flight slot, enough in one turn to overflow a small CQ.
class cqe_flood final : public detail::operation_base {
public:
    cqe_flood(driver& d, std::size_t messages)
        : operation_base(&on_complete, &on_start, nullptr)
        , driver_(&d)
        , received_(messages, 0) {
        const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        REQUIRE(fd >= 0);
        event_fd_.reset(fd);
    }

    // Holds a slot like any operation, so that `in_flight()` counts the poll until its end.
    void arm() {
        REQUIRE(driver_->acquire_slot(*this));
        on_start(*this);
    }
    void poke() const noexcept {
        const std::uint64_t one = 1;
        (void)!::write(event_fd_.get(), &one, sizeof(one));
    }
    // `count` messages starting with number `first`, prepared now, submitted by this turn.
    void send(std::uint32_t first, std::uint32_t count) {
        for (std::uint32_t i = first; i < first + count; ++i) {
            io_uring_sqe& sqe = driver_->get_sqe();
            prep_msg_ring(sqe, driver_->ring().fd(), i, user_data(message_tag));
            set_user_data(sqe, std::uint64_t{0}); // the sender's own CQE: ignored
        }
    }
    void stop() { driver_->cancel(user_data()); }

    [[nodiscard]] bool armed() const noexcept { return armed_; }
    [[nodiscard]] std::uint64_t poll_cqes() const noexcept { return poll_cqes_; }
    [[nodiscard]] bool each_message_once() const {
        return bad_messages_ == 0 &&
               std::all_of(received_.begin(), received_.end(), [](int n) { return n == 1; });
    }

private:
    static void on_start(operation_base& base) noexcept {
        auto& self = static_cast<cqe_flood&>(base);
        io_uring_sqe& sqe = self.driver_->get_sqe(); // never throws while the SQ has room
        prep_poll_multishot(sqe, self.event_fd_.get(), POLLIN);
        set_user_data(sqe, self.user_data());
        self.armed_ = true;
    }
    static void on_complete(operation_base& base, const completion& c) noexcept {
        auto& self = static_cast<cqe_flood&>(base);
        if ((c.user_data & detail::user_data_tag_mask) == message_tag) {
            if (c.result >= 0 && static_cast<std::size_t>(c.result) < self.received_.size()) {
                ++self.received_[static_cast<std::size_t>(c.result)];
            } else {
                ++self.bad_messages_;
            }
            return;
        }
        ++self.poll_cqes_;
        if (c.more()) return;
        self.armed_ = false;
        self.driver_->release_slot();
    }

    driver* driver_;
    unique_fd event_fd_;
    std::vector<int> received_;
    std::size_t bad_messages_ = 0;
    std::uint64_t poll_cqes_ = 0;
    bool armed_ = false;
};

// A nop, a byte written to a shared pipe and a byte read back from it, another nop. Each
// task writes before it reads, so every read finds a byte (perhaps another task's) and no
// read can hold a slot that the write it waits for needs.
task<> nops_and_pipe(int id, test::fd_pair& pipe, cqe_flood& flood, std::vector<int>& resumed,
                     std::size_t& finished) {
    const std::byte out{static_cast<unsigned char>(id)};
    std::byte in{};
    bool ok = (co_await nop()).ok();
    const io_result w = co_await write_byte(pipe.second.get(), &out);
    flood.poke();
    const io_result r = co_await read_byte(pipe.first.get(), &in);
    ok = ok && w.ok() && w.value() == 1 && r.ok() && r.value() == 1;
    ok = ok && (co_await nop()).ok();
    resumed[static_cast<std::size_t>(id)] += ok ? 1 : 100;
    ++finished;
}

// ---- Cancellation storms ------------------------------------------------------------------

enum class victim_kind { blocked_read, racing_read, nop, timed_read, sleep };

struct victim {
    victim_kind kind = victim_kind::nop;
    std::chrono::microseconds delay{}; // of a sleep, or before a timed read times out
    std::stop_source stop;
    int resumed = 0;
    int result = 0;
};

// Awaits one operation of `v.kind` and records the outcome. A racing read's pipe gets its
// byte in the same turn as the cancel request (see the storm loop).
task<> await_victim(victim& v, int read_fd, std::atomic<int>& live) {
    const live_frame frame(live);
    std::byte b{};
    io_result r;
    switch (v.kind) {
    case victim_kind::blocked_read:
    case victim_kind::racing_read:
        r = co_await read_byte(read_fd, &b);
        break;
    case victim_kind::nop:
        r = co_await nop();
        break;
    case victim_kind::timed_read:
        r = co_await make_operation([read_fd, &b](io_uring_sqe& sqe) noexcept {
                prep_read(sqe, read_fd, std::span(&b, 1), current_position);
            }).with_timeout(v.delay);
        break;
    case victim_kind::sleep:
        r = co_await sleep_for(v.delay);
        break;
    }
    v.result = r.raw();
    ++v.resumed;
}

// Whether `result` is an outcome an operation of `kind` may have once cancelled at random.
bool plausible(victim_kind kind, int result) {
    switch (kind) {
    case victim_kind::blocked_read:
        return result == -ECANCELED || result == 1;
    case victim_kind::racing_read:
        return result == -ECANCELED || result == 1;
    case victim_kind::nop:
        return result == -ECANCELED || result == 0;
    case victim_kind::timed_read:
        return result == -ECANCELED || result == -ETIME || result == 1;
    case victim_kind::sleep:
        return result == -ECANCELED || result == 0;
    }
    return false;
}

std::size_t drain_pipe(int fd) {
    REQUIRE(::fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    std::size_t n = 0;
    std::byte buf[256];
    for (ssize_t r; (r = ::read(fd, buf, sizeof(buf))) > 0;)
        n += static_cast<std::size_t>(r);
    return n;
}

struct storm_result {
    std::size_t victims = 0;
    std::size_t resumed_once = 0;
    std::size_t implausible = 0;
    std::size_t cancelled = 0;
    std::size_t bytes_written = 0;
    std::size_t bytes_read = 0;
    std::size_t bytes_left = 0;
    int live_frames_after = 0;
    unsigned in_flight_after = 0;
    bool finished = false;
};

// `count` victims on a driver whose in-flight cap is far below `count`, so that some wait
// for a slot when cancelled; a random one in every few is cancelled before it starts, the
// others at random turns: from this thread, or from `remote` when it is set.
storm_result cancellation_storm(std::size_t count, bool remote, std::uint32_t seed) {
    constexpr std::size_t pipe_count = 16;
    storm_result out;
    out.victims = count;
    std::atomic<int> live{0};
    std::vector<victim> victims(count);
    std::vector<test::fd_pair> pipes;
    for (std::size_t i = 0; i < pipe_count; ++i)
        pipes.push_back(test::make_pipe());
    std::mt19937 rng(seed);
    {
        driver d(driver_options{.entries = 64, .cq_entries = 512}); // 256 slots
        for (std::size_t i = 0; i < count; ++i) {
            victim& v = victims[i];
            v.kind = static_cast<victim_kind>(rng() % 5);
            v.delay = std::chrono::microseconds(100 + rng() % 50'000);
            if (rng() % 10 == 0) v.stop.request_stop(); // before it is even awaited
            spawn(d, await_victim(v, pipes[i % pipe_count].first.get(), live), v.stop.get_token());
        }

        // The other thread's share: every third victim, cancelled in random order while the
        // loop runs.
        std::vector<std::size_t> theirs;
        std::vector<std::size_t> ours;
        for (std::size_t i = 0; i < count; ++i)
            (remote && i % 3 == 0 ? theirs : ours).push_back(i);
        std::shuffle(theirs.begin(), theirs.end(), rng);
        std::shuffle(ours.begin(), ours.end(), rng);
        // It cancels a random batch per loop turn, so that its requests land in every phase
        // of the storm rather than all before the first turn.
        std::atomic<unsigned> turns{0};
        std::thread canceller;
        if (remote) {
            canceller = std::thread([&victims, &theirs, &turns, seed] {
                std::mt19937 their_rng(seed + 1);
                std::size_t next = 0;
                while (next < theirs.size()) {
                    for (std::size_t k = their_rng() % 32; k > 0 && next < theirs.size(); --k) {
                        victims[theirs[next++]].stop.request_stop();
                    }
                    const unsigned seen = turns.load();
                    const auto until = std::chrono::steady_clock::now() + 2ms;
                    while (turns.load() == seen && std::chrono::steady_clock::now() < until) {
                        std::this_thread::yield();
                    }
                }
            });
        }

        const auto all_resumed = [&] {
            return std::all_of(victims.begin(), victims.end(),
                               [](const victim& v) { return v.resumed > 0; });
        };
        std::size_t next = 0;
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (!all_resumed() && std::chrono::steady_clock::now() < deadline) {
            // A random batch per turn: a racing read gets its byte written just before its
            // cancel request is prepared, so that the kernel sees both in one submit.
            for (std::size_t k = rng() % 64; k > 0 && next < ours.size(); --k, ++next) {
                victim& v = victims[ours[next]];
                if (v.kind == victim_kind::racing_read && v.resumed == 0) {
                    const char c = 'r';
                    REQUIRE(::write(pipes[ours[next] % pipe_count].second.get(), &c, 1) == 1);
                    ++out.bytes_written;
                }
                v.stop.request_stop();
            }
            d.run_turn(next >= ours.size());
            ++turns;
        }
        if (canceller.joinable()) canceller.join();
        out.finished = run_until(d, all_resumed, 30s);
        out.in_flight_after = d.in_flight();
        for (const victim& v : victims) {
            if (v.resumed == 1) ++out.resumed_once;
            if (!plausible(v.kind, v.result)) ++out.implausible;
            if (v.result == -ECANCELED) ++out.cancelled;
            if (v.result == 1) ++out.bytes_read;
        }
    }
    out.live_frames_after = live.load();
    for (test::fd_pair& p : pipes)
        out.bytes_left += drain_pipe(p.first.get());
    return out;
}

} // namespace

TEST_CASE("a CQ of 16 entries under thousands of operations and a CQE flood loses nothing") {
    constexpr int tasks = 5000;
    constexpr std::uint32_t bursts = 200;
    constexpr std::uint32_t per_burst = 40; // more than the CQ holds, in one turn
    driver d(driver_options{.entries = 8, .cq_entries = 16, .max_in_flight = 8});
    REQUIRE(d.ring().cq().capacity() == 16);
    REQUIRE(d.in_flight_limit() == 8);

    cqe_flood flood(d, bursts * per_burst);
    flood.arm();
    std::vector<test::fd_pair> pipes;
    for (int i = 0; i < 32; ++i)
        pipes.push_back(test::make_pipe());
    std::vector<int> resumed(tasks, 0);
    std::size_t finished = 0;
    for (int i = 0; i < tasks; ++i) {
        spawn(d, nops_and_pipe(i, pipes[static_cast<std::size_t>(i) % pipes.size()], flood, resumed,
                               finished));
    }

    std::uint32_t sent = 0;
    std::uint64_t overflow_seen = 0;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while ((finished < tasks || sent < bursts * per_burst) &&
           std::chrono::steady_clock::now() < deadline) {
        if (sent < bursts * per_burst) {
            flood.send(sent, per_burst);
            sent += per_burst;
        }
        d.run_turn(true);
        if (d.ring().sq().cq_overflow()) ++overflow_seen;
    }
    INFO("turns " << d.stats().turns << ", enters " << d.stats().enters << ", overflow seen in "
                  << overflow_seen << " turns");
    REQUIRE(finished == tasks);
    // Every message has been submitted; let the last ones arrive, then end the poll.
    CHECK(run_until(
        d, [&] { return flood.each_message_once(); }, 10s));
    flood.stop();
    CHECK(run_until(
        d, [&] { return !flood.armed(); }, 10s));

    CHECK(std::all_of(resumed.begin(), resumed.end(), [](int n) { return n == 1; }));
    CHECK(flood.each_message_once());
    CHECK(flood.poll_cqes() > 1);
    CHECK(overflow_seen > 0);             // the kernel did hold completions back...
    CHECK(d.ring().cq().overflow() == 0); // ...and dropped none
    CHECK_FALSE(d.ring().sq().cq_overflow());
    CHECK(d.in_flight() == 0);
    CHECK(d.idle());
}

TEST_CASE("a cancellation storm from the driver's thread resumes each op once and leaks nothing") {
    const bool faults = GENERATE(false, true);
    testing::fault_scope scope;
    if (faults) testing::fail_enters(EINTR, 1'000'000, 5); // the loop's enters fail now and then
    const storm_result r = cancellation_storm(4000, false, GENERATE(1U, 2U));
    testing::reset_faults();
    CHECK(r.finished);
    CHECK(r.resumed_once == r.victims);
    CHECK(r.implausible == 0);
    CHECK(r.cancelled > r.victims / 4); // the storm did cancel; under TSan more ops finish first
    CHECK(r.in_flight_after == 0);
    CHECK(r.live_frames_after == 0);
    // Nothing lost: every byte written was read by exactly one read or is still in its pipe.
    CHECK(r.bytes_read + r.bytes_left == r.bytes_written);
}

TEST_CASE("a cancellation storm from another thread resumes each op once and leaks nothing") {
    const storm_result r = cancellation_storm(4000, true, GENERATE(3U, 4U));
    CHECK(r.finished);
    CHECK(r.resumed_once == r.victims);
    CHECK(r.implausible == 0);
    CHECK(r.cancelled > r.victims / 4); // the storm did cancel; under TSan more ops finish first
    CHECK(r.in_flight_after == 0);
    CHECK(r.live_frames_after == 0);
    CHECK(r.bytes_read + r.bytes_left == r.bytes_written);
}

TEST_CASE("a driver destroyed in the middle of a cancellation storm waits for every CQE") {
    constexpr std::size_t count = 2000;
    std::atomic<int> live{0};
    std::vector<victim> victims(count);
    test::fd_pair p = test::make_pipe();
    {
        driver d(driver_options{.entries = 32}); // 64 slots: most wait for one
        for (std::size_t i = 0; i < count; ++i) {
            victims[i].kind = i % 2 ? victim_kind::blocked_read : victim_kind::sleep;
            victims[i].delay = std::chrono::microseconds(100 * i);
            spawn(d, await_victim(victims[i], p.first.get(), live), victims[i].stop.get_token());
        }
        for (int turn = 0; turn < 5; ++turn)
            d.run_turn(false);
        std::thread canceller([&] {
            for (std::size_t i = 0; i < count; i += 2)
                victims[i].stop.request_stop();
        });
        for (int turn = 0; turn < 5; ++turn)
            d.run_turn(false);
        canceller.join();
    }
    CHECK(live.load() == 0);
    CHECK(std::all_of(victims.begin(), victims.end(),
                      [](const victim& v) { return v.resumed <= 1; }));
}
