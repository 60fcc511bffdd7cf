// libuv_embed: tram's driver inside libuv's event loop, on one thread.
//
// libuv owns the thread and sleeps in epoll_wait; tram's ring fd sits in that epoll set as a
// uv_poll_t, and the driver runs one non-blocking turn (`run_once`) whenever it polls
// readable. Meanwhile a libuv timer ticks, and tram coroutines tick on ring timeouts and echo
// messages over a loopback TCP connection. The embedding contract (README, "Embedding in
// another event loop") has two halves, and this program follows both:
//   1. the ring fd polls readable while completions wait in the CQ (level-triggered, so CQEs
//      left in the CQ after a callback make epoll report it again);
//   2. what a turn leaves behind is not in the CQ: coroutines made ready and SQEs prepared by
//      the coroutines it ran (submitted only by the next turn), or completions still queued
//      as task work (IORING_SQ_TASKRUN). `has_pending_work()` says so, and a uv_prepare_t
//      (which libuv runs just before it computes its poll timeout) runs more turns then,
//      keeping a uv_idle_t active (a zero poll timeout) while work remains.
#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int ticks_wanted = 10;
constexpr auto uv_tick_period = 15ms;
constexpr auto tram_tick_period = 20ms;
constexpr int messages_wanted = 100;
constexpr std::size_t message_size = 64;
// A tram timer that fires while libuv has nothing else to wake up for: how late it comes
// back shows whether the ring fd wakes epoll_wait by itself.
constexpr auto lone_sleep = 50ms;

// Turns in a row that the prepare callback runs before it lets libuv poll (with a zero
// timeout, since the idle handle stays active): bounds the time libuv's own handles wait
// for a coroutine that keeps yielding.
constexpr int max_turns_per_iteration = 16;

/// Everything the libuv callbacks share: the loop's handles and tram's driver.
struct host {
    explicit host(tram::driver& d)
        : driver(d) {}

    tram::driver& driver;
    uv_loop_t loop{};
    uv_poll_t ring_poll{};        // the driver's fd
    uv_prepare_t before_poll{};   // runs the turns that has_pending_work asks for
    uv_idle_t keep_polling_hot{}; // active: libuv polls without sleeping
    uv_timer_t ticker{};
    clock_type::time_point start = clock_type::now();
    std::exception_ptr failure;
    int uv_ticks = 0;
    int tram_ticks = 0;
    int tram_tasks_running = 0;
    int messages_echoed = 0;
    double lone_sleep_late_ms = -1;
    bool closing = false;

    [[nodiscard]] double elapsed_ms() const {
        return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    }
};

void close_all(host& h);

void finish_if_done(host& h) {
    if (!h.closing && h.tram_tasks_running == 0 && h.uv_ticks == ticks_wanted) close_all(h);
}

/// One driver turn, then tells libuv whether to come back before sleeping.
void run_driver(host& h) {
    if (h.closing) return;
    try {
        h.driver.run_once();
    } catch (...) {
        // An exception that escaped a tram task: stop, and report it from main.
        if (!h.failure) h.failure = std::current_exception();
        close_all(h);
        return;
    }
    if (h.driver.has_pending_work()) {
        uv_idle_start(&h.keep_polling_hot, [](uv_idle_t*) {});
    } else {
        uv_idle_stop(&h.keep_polling_hot);
    }
    finish_if_done(h);
}

void on_ring_readable(uv_poll_t* poll, int status, int) {
    host& h = *static_cast<host*>(poll->data);
    if (status < 0) {
        std::fprintf(stderr, "libuv_embed: polling the ring fd: %s\n", uv_strerror(status));
        close_all(h);
        return;
    }
    run_driver(h);
}

void on_before_poll(uv_prepare_t* prepare) {
    host& h = *static_cast<host*>(prepare->data);
    for (int i = 0; i < max_turns_per_iteration && !h.closing && h.driver.has_pending_work(); ++i) {
        run_driver(h);
    }
}

void on_uv_tick(uv_timer_t* timer) {
    host& h = *static_cast<host*>(timer->data);
    ++h.uv_ticks;
    std::printf("%7.1f ms  libuv timer tick %d\n", h.elapsed_ms(), h.uv_ticks);
    if (h.uv_ticks == ticks_wanted) {
        uv_timer_stop(timer);
        finish_if_done(h);
    }
}

void close_all(host& h) {
    if (h.closing) return;
    h.closing = true;
    for (uv_handle_t* handle :
         {reinterpret_cast<uv_handle_t*>(&h.ring_poll), reinterpret_cast<uv_handle_t*>(&h.ticker),
          reinterpret_cast<uv_handle_t*>(&h.before_poll),
          reinterpret_cast<uv_handle_t*>(&h.keep_polling_hot)}) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
    }
}

// Keeps count of the tram tasks still running, whichever way they end.
struct running_task {
    explicit running_task(host& h)
        : h_(h) {
        ++h_.tram_tasks_running;
    }
    running_task(const running_task&) = delete;
    running_task& operator=(const running_task&) = delete;
    ~running_task() { --h_.tram_tasks_running; }
    host& h_;
};

tram::task<> tram_ticks(host& h) {
    const running_task counted(h);
    for (int i = 1; i <= ticks_wanted; ++i) {
        (void)co_await tram::sleep_for(tram_tick_period);
        h.tram_ticks = i;
        std::printf("%7.1f ms  tram timer tick %d\n", h.elapsed_ms(), i);
    }
    // By now libuv's timer has stopped: only the ring fd can end libuv's epoll_wait.
    const auto before = clock_type::now();
    (void)co_await tram::sleep_for(lone_sleep);
    h.lone_sleep_late_ms =
        std::chrono::duration<double, std::milli>(clock_type::now() - before - lone_sleep).count();
    std::printf("%7.1f ms  tram sleep of %lld ms with libuv idle: %.1f ms late\n", h.elapsed_ms(),
                static_cast<long long>(lone_sleep.count()), h.lone_sleep_late_ms);
}

tram::task<> echo_server(const tram::tcp_listener& listener) {
    tram::tcp_stream peer = co_await listener.accept();
    std::byte buf[4096];
    for (;;) {
        const std::size_t n = co_await peer.recv(buf);
        if (n == 0) co_return; // the client closed
        co_await peer.send_all(std::span(buf, n));
    }
}

tram::task<> echo_client(host& h, tram::socket_address to) {
    tram::tcp_stream s = co_await tram::tcp_stream::connect(to, 2s);
    std::byte sent[message_size];
    std::byte received[message_size];
    for (int i = 0; i < messages_wanted; ++i) {
        std::memset(sent, i & 0xff, sizeof sent);
        co_await s.send_all(sent);
        co_await s.recv_exact(received);
        if (std::memcmp(sent, received, sizeof sent) != 0) {
            throw tram::error(EIO, "echo " + std::to_string(i) + ": the reply differs");
        }
        h.messages_echoed = i + 1;
        if ((i + 1) % 25 == 0) {
            std::printf("%7.1f ms  tram echo: %d messages\n", h.elapsed_ms(), i + 1);
        }
        // A pause, so that the echo spreads over several of libuv's ticks.
        if (i % 10 == 9) (void)co_await tram::sleep_for(5ms);
    }
}

tram::task<> tram_echo(host& h) {
    const running_task counted(h);
    const tram::tcp_listener listener =
        tram::tcp_listener::bind(tram::socket_address::parse("127.0.0.1:0"));
    co_await tram::when_all(echo_server(listener), echo_client(h, listener.local_address()));
}

int check(int uv_result, const char* what) {
    if (uv_result < 0)
        throw tram::error(-uv_result, std::string(what) + ": " + uv_strerror(uv_result));
    return uv_result;
}

int run() {
    // Pollable: no DEFER_TASKRUN, whose completions would appear only when we enter the ring.
    tram::driver driver(tram::driver_options{.pollable = true});
    host h(driver);
    // Tasks still suspended when we leave early (an error) are destroyed by the driver's
    // shutdown, and their destructors use `h`: so the driver shuts down before `h` goes.
    struct shutdown_first {
        tram::driver& d;
        ~shutdown_first() { d.shutdown(); }
    } const shutdown_guard{driver};
    check(uv_loop_init(&h.loop), "uv_loop_init");
    h.ring_poll.data = h.before_poll.data = h.keep_polling_hot.data = h.ticker.data = &h;
    check(uv_poll_init(&h.loop, &h.ring_poll, driver.fd()), "uv_poll_init ring fd");
    check(uv_poll_start(&h.ring_poll, UV_READABLE, on_ring_readable), "uv_poll_start");
    check(uv_prepare_init(&h.loop, &h.before_poll), "uv_prepare_init");
    check(uv_prepare_start(&h.before_poll, on_before_poll), "uv_prepare_start");
    check(uv_idle_init(&h.loop, &h.keep_polling_hot), "uv_idle_init");
    check(uv_timer_init(&h.loop, &h.ticker), "uv_timer_init");
    const auto period = static_cast<std::uint64_t>(uv_tick_period.count());
    check(uv_timer_start(&h.ticker, on_uv_tick, period, period), "uv_timer_start");

    tram::spawn(driver, tram_ticks(h));
    tram::spawn(driver, tram_echo(h));

    check(uv_run(&h.loop, UV_RUN_DEFAULT), "uv_run");
    check(uv_loop_close(&h.loop), "uv_loop_close");

    // Descriptors closed by the tasks' destructors go through the ring: let those SQEs out.
    for (int i = 0; i < 100 && !driver.idle(); ++i)
        driver.run_once();
    if (h.failure) std::rethrow_exception(h.failure);

    std::printf("done: libuv ticks %d, tram ticks %d, echoed %d messages, lone sleep %.1f ms "
                "late, driver %s, %llu turns, %llu io_uring_enter\n",
                h.uv_ticks, h.tram_ticks, h.messages_echoed, h.lone_sleep_late_ms,
                driver.idle() ? "idle" : "busy",
                static_cast<unsigned long long>(driver.stats().turns),
                static_cast<unsigned long long>(driver.stats().enters));
    const bool complete = h.uv_ticks == ticks_wanted && h.tram_ticks == ticks_wanted &&
                          h.messages_echoed == messages_wanted && h.lone_sleep_late_ms >= 0 &&
                          driver.idle();
    return complete ? 0 : 1;
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc > 1) {
        const bool help = std::string_view(argv[1]) == "--help";
        std::fputs("Usage: libuv_embed [--help]\n"
                   "Runs tram's driver inside libuv's loop on one thread: a libuv timer and\n"
                   "tram coroutines (ring timers, a loopback TCP echo) progress together.\n",
                   help ? stdout : stderr);
        return help ? 0 : 2;
    }
    // Lines as they happen, even into a pipe: they show the interleaving.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        return run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "libuv_embed: %s\n", e.what());
        return 1;
    }
}
