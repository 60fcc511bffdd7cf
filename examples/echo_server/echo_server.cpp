// echo_server: a TCP echo server on tram.
//
// One multishot accept per listener; per connection, a first recv into a buffer the kernel
// picks from a provided-buffer ring, then `send_then_recv`: the echo of that buffer linked to
// the next recv, both submitted in one batch with the send's success CQE skipped. So an
// exchange costs one CQE, and a loop turn's single io_uring_enter submits every connection's
// next exchange at once. The echo is sent straight from the buffer it arrived in, which goes
// back to the ring when the next recv's CQE arrives: by then the kernel is done sending it.
//
// With --threads N > 1, N workers (tram::worker_pool) serve the connections, in one of two ways
// (--accept):
//  - reuseport: each worker accepts on its own SO_REUSEPORT listener of the same port and
//    serves the connections the kernel hands it (by a hash of the addresses), sharing nothing.
//  - handoff: worker 0 alone listens; its multishot accept deals the connections out round-robin
//    over every worker, itself included, through a per-worker tram::inbox woken with the pool's
//    cross-thread path (driver::schedule_remote: an IORING_OP_MSG_RING from worker 0's ring).
// SIGINT and SIGTERM are read from a signalfd through the ring; the server then stops
// accepting, cancels every connection's I/O, waits for the kernel to confirm, prints how many
// connections each worker served ("connections per worker: N M ...") and exits 0.
//
//   echo_server [--host 127.0.0.1] [--port 7000] [--threads 1] [--accept handoff]
#include <tram/runtime.hpp>

#include <sys/resource.h>
#include <sys/signalfd.h>

#include <coroutine>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Per worker: 4096 buffers of 8 KiB. A connection holds at most one between exchanges (the
// echo being sent), and idle connections keep theirs: beyond half as many connections as
// buffers, echoes go out from a copy instead (see echo_connection).
constexpr unsigned ring_buffers = 4096;
constexpr std::size_t ring_buffer_size = 8192;
constexpr std::uint16_t ring_group = 1;

// How connections reach the workers with --threads N > 1 (see the top of the file).
enum class accept_mode { reuseport, handoff };

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    unsigned threads = 1;
    // The faster of the two in bench/scripts/echo_compare.py's scaling runs (see README).
    accept_mode accept = accept_mode::handoff;
    // Completion batching (tram::driver_options): with many connections, one wait reaps up
    // to `batch` completions that arrive within `batch_window_us` of each other.
    unsigned batch = 64;
    unsigned batch_window_us = 50;
};

void print_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: echo_server [--host ADDR] [--port PORT] [--threads N]\n"
                 "                   [--accept reuseport|handoff] [--batch N]\n"
                 "                   [--batch-window US] [--help]\n"
                 "  A TCP echo server on io_uring (tram). Prints 'listening on ADDR:PORT' when\n"
                 "  ready; SIGINT or SIGTERM stop it (exit 0).\n"
                 "  --host ADDR   IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
                 "  --port PORT   TCP port, 0 for one the kernel picks (default 7000)\n"
                 "  --threads N   worker threads, each with its own ring (default 1: the\n"
                 "                main thread serves)\n"
                 "  --accept MODE with N > 1: 'reuseport', a SO_REUSEPORT listener per worker,\n"
                 "                or 'handoff', one listener whose worker deals connections\n"
                 "                out round-robin (default handoff)\n"
                 "  --batch N     with 8+ operations in flight, wait for up to N completions\n"
                 "                per system call (Linux 6.12; 0: off; default 64)\n"
                 "  --batch-window US  ...but no longer than US microseconds once one is\n"
                 "                there (default 50)\n");
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "echo_server: %s\n", message.c_str());
    print_usage(stderr);
    std::exit(2);
}

unsigned long parse_number(std::string_view option, const char* text, unsigned long max) {
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || errno != 0 || value > max) {
        usage_error("bad " + std::string(option) + " '" + text + "' (0 to " + std::to_string(max) +
                    ")");
    }
    return value;
}

options parse_options(int argc, char** argv) {
    options opts;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout);
            std::exit(0);
        }
        if (arg != "--host" && arg != "--port" && arg != "--threads" && arg != "--accept" &&
            arg != "--batch" && arg != "--batch-window") {
            usage_error("unknown argument '" + std::string(arg) + "'");
        }
        if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
        const char* value = argv[++i];
        if (arg == "--host") {
            opts.host = value;
        } else if (arg == "--port") {
            opts.port = static_cast<std::uint16_t>(parse_number(arg, value, 65535));
        } else if (arg == "--accept") {
            const std::string_view mode = value;
            if (mode == "reuseport") {
                opts.accept = accept_mode::reuseport;
            } else if (mode == "handoff") {
                opts.accept = accept_mode::handoff;
            } else {
                usage_error("bad --accept '" + std::string(mode) + "' (reuseport or handoff)");
            }
        } else if (arg == "--batch") {
            opts.batch = static_cast<unsigned>(parse_number(arg, value, 4096));
        } else if (arg == "--batch-window") {
            opts.batch_window_us = static_cast<unsigned>(parse_number(arg, value, 1'000'000));
        } else {
            opts.threads = static_cast<unsigned>(parse_number(arg, value, 1024));
            if (opts.threads == 0) usage_error("bad --threads '0' (1 to 1024)");
        }
    }
    return opts;
}

// Thousands of connections need more descriptors than the usual soft limit of 1024.
void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
}

// The connections a worker serves, so that it can wait for the last one to end before its
// buffer ring goes away.
class connection_count {
public:
    void add() noexcept { ++live_; }
    void remove() noexcept {
        if (--live_ == 0 && waiter_) std::exchange(waiter_, nullptr).resume();
    }
    [[nodiscard]] std::size_t live() const noexcept { return live_; }
    // `co_await count.drained()`: resumes once no connection is left.
    [[nodiscard]] auto drained() noexcept {
        struct awaiter {
            connection_count* self;
            bool await_ready() const noexcept { return self->live_ == 0; }
            void await_suspend(std::coroutine_handle<> h) const noexcept { self->waiter_ = h; }
            void await_resume() const noexcept {}
        };
        return awaiter{this};
    }

private:
    std::size_t live_ = 0;
    std::coroutine_handle<> waiter_;
};

struct counted {
    connection_count* count;
    explicit counted(connection_count& c) noexcept
        : count(&c) {
        c.add();
    }
    counted(const counted&) = delete;
    counted& operator=(const counted&) = delete;
    ~counted() { count->remove(); }
};

bool is_expected_end(int errnum) noexcept {
    return errnum == ECONNRESET || errnum == EPIPE || errnum == ECANCELED || errnum == ETIMEDOUT;
}

tram::task<> echo_connection(tram::tcp_stream conn, tram::buffer_ring& ring,
                             connection_count& count) {
    const counted guard(count); // first, so that it goes last, after the chunk's buffer
    tram::recv_chunk chunk;
    std::span<const std::byte> reply; // what the next exchange echoes first
    std::vector<std::byte> copy;      // the echo, when buffers are scarce
    try {
        for (;;) {
            bool ring_dry = false;
            try {
                // Until the peer's end of stream: echo what came, linked to the next recv.
                // (No co_await inside ?: here: g++ 12 evaluates both arms.)
                if (reply.empty()) {
                    chunk = co_await conn.recv(ring);
                } else {
                    chunk = co_await conn.send_then_recv(reply, ring);
                }
                if (chunk.size() == 0) break;
                reply = chunk.bytes();
                // The buffer stays ours until the next recv's CQE says the echo is sent, and
                // an idle connection keeps it: with many connections those could hold every
                // buffer and leave the busy ones none. Then echo from a copy, and give the
                // buffer back now.
                if (count.live() * 2 > ring.count()) {
                    copy.assign(reply.begin(), reply.end());
                    chunk.release();
                    reply = copy;
                }
            } catch (const tram::error& e) {
                if (e.errnum() != ENOBUFS) throw;
                ring_dry = true;
            }
            if (ring_dry) {
                // The echo was sent, but no buffer was left for the next recv: let other
                // connections give theirs back before receiving again.
                reply = {};
                chunk.release();
                co_await tram::sleep_for(1ms);
            }
        }
    } catch (const tram::error& e) {
        if (!is_expected_end(e.errnum())) std::fprintf(stderr, "echo_server: %s\n", e.what());
    }
}

// One worker's connections: the buffer ring they receive into, their count, and the stop
// source that ends them. Lives in a coroutine on that worker.
class worker_connections {
public:
    worker_connections()
        : ring_(tram::current_driver()->ring(), ring_group, ring_buffers, ring_buffer_size) {}

    // Serves `conn` on this worker, until its peer ends it or `end()`.
    void start(tram::tcp_stream conn) {
        conn.set_nodelay(true);
        ++started_;
        tram::spawn(
            echo_connection(std::move(conn), ring_, count_).with_stop_token(stop_.get_token()));
    }
    // Ends every connection and waits for them, before the ring goes away.
    tram::task<> end() {
        stop_.request_stop();
        co_await count_.drained();
    }
    [[nodiscard]] std::size_t started() const noexcept { return started_; }

private:
    tram::buffer_ring ring_;
    connection_count count_;
    std::stop_source stop_;
    std::size_t started_ = 0;
};

// --accept handoff: the connections that the accepting worker deals to one other worker.
//
// What crosses threads is the plain descriptor: the workers are threads of one process, which
// share one descriptor table, so a descriptor accepted through worker 0's ring is valid as is
// on every worker (no SCM_RIGHTS, no registered-file transfer). Coroutine frames never cross:
// the worker's own `serve_inbox` starts each connection's task, so every frame is allocated and
// freed on the thread that runs it (tram's frame allocator keeps a free list per thread, and a
// frame freed on another thread than the one that allocated it ends up on the freeing thread's
// list). A burst of connections costs one wake-up: only the push that finds the worker waiting
// schedules it (tram::inbox: an IORING_OP_MSG_RING riding along with the acceptor's next
// io_uring_enter).
//
// A descriptor the worker never gets (its inbox was closed because the server is stopping, or
// the pool went away first) is closed, so that its client sees the end of its connection at
// once.
struct close_descriptor {
    void operator()(int fd) const noexcept { ::close(fd); }
};
using connection_inbox = tram::inbox<int, close_descriptor>;

// Serves `listener` until a stop request, then ends every connection and waits for them. With
// `inboxes` (--accept handoff), the connections go round-robin to the worker of each index,
// this one (whose slot is null) included. `served`: how many connections this worker served.
tram::task<> serve(tram::tcp_listener& listener, std::size_t& served,
                   std::span<const std::unique_ptr<connection_inbox>> inboxes = {}) {
    worker_connections mine;
    std::size_t turn = 0;
    {
        auto incoming = listener.incoming();
        for (;;) {
            int failed = 0;
            try {
                tram::tcp_stream conn = co_await incoming.next();
                connection_inbox* to =
                    inboxes.empty() ? nullptr : inboxes[turn++ % inboxes.size()].get();
                if (to != nullptr) {
                    to->push(conn.release());
                } else {
                    mine.start(std::move(conn));
                }
            } catch (const tram::error& e) {
                failed = e.errnum();
                if (failed != ECANCELED) std::fprintf(stderr, "echo_server: %s\n", e.what());
            }
            if (failed == ECANCELED) break; // our stop
            // Anything else (EMFILE...) ended the multishot accept; the next `next()` arms it
            // again, after a pause that lets connections close.
            if (failed == 0) continue;
            bool stopped = false;
            try {
                co_await tram::sleep_for(10ms);
            } catch (const tram::error&) {
                stopped = true; // cancelled: the stop came meanwhile
            }
            if (stopped) break;
        }
    }
    served = mine.started();
    co_await mine.end();
}

// --accept handoff, on a worker that does not accept: serves what its inbox brings until
// `stop`, then ends every connection and waits for them.
tram::task<> serve_inbox(connection_inbox& box, std::stop_token stop, std::size_t& served) {
    worker_connections mine;
    {
        // Runs on the thread that requests the stop (or here, if it already came).
        const std::stop_callback on_stop(stop, [&box]() noexcept { box.close(); });
        std::vector<int> fds;
        while (co_await box.next(fds)) {
            for (int fd : fds) {
                try {
                    mine.start(tram::tcp_stream(tram::descriptor(fd)));
                } catch (const tram::error& e) {
                    std::fprintf(stderr, "echo_server: %s\n", e.what());
                }
            }
        }
    }
    served = mine.started();
    co_await mine.end();
}

// Blocks SIGINT and SIGTERM (in every thread started after this) and gives a signalfd that
// receives them instead.
tram::descriptor signal_descriptor() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
        throw tram::error(errno, "pthread_sigmask SIGINT SIGTERM");
    }
    const int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0) tram::throw_error(errno, "signalfd SIGINT SIGTERM");
    return tram::descriptor(fd);
}

// Waits, through the ring, for SIGINT or SIGTERM.
tram::task<> wait_for_signal(int signal_fd) {
    signalfd_siginfo info{};
    const tram::io_result r = co_await tram::make_operation([&](io_uring_sqe& sqe) noexcept {
        tram::prep_read(sqe, signal_fd, std::as_writable_bytes(std::span(&info, 1)), 0);
    });
    if (!r.ok()) tram::throw_error(r.error(), "read signalfd");
}

tram::task<> serve_until_signal(tram::tcp_listener& listener, int signal_fd, std::size_t& served) {
    // when_any cancels the server once the signal comes, and waits for it to wind down.
    (void)co_await tram::when_any(serve(listener, served), wait_for_signal(signal_fd));
}

// Runs `server` on a worker and reports its end through `done`.
tram::task<> report_end(tram::task<> server, std::promise<void>& done) {
    try {
        co_await std::move(server);
        done.set_value();
    } catch (...) {
        done.set_exception(std::current_exception());
    }
}

std::string address_text(const options& opts) {
    const bool v6 = opts.host.find(':') != std::string::npos;
    return (v6 ? "[" + opts.host + "]" : opts.host) + ":" + std::to_string(opts.port);
}

void print_served(const std::vector<std::size_t>& served) {
    std::printf("connections per worker:");
    for (std::size_t n : served)
        std::printf(" %zu", n);
    std::printf("\n");
    std::fflush(stdout);
}

int run_server(const options& opts) {
    tram::descriptor signals = signal_descriptor();
    raise_descriptor_limit();
    const tram::socket_address where = tram::socket_address::parse(address_text(opts));
    const bool handoff = opts.threads > 1 && opts.accept == accept_mode::handoff;

    // Every listener is bound before "listening on": a port in use fails here, at once. With
    // port 0 the first one's port is the one the others share.
    std::vector<tram::tcp_listener> listeners;
    tram::listen_options listen;
    listen.reuse_port = opts.threads > 1 && !handoff;
    listeners.push_back(tram::tcp_listener::bind(where, listen));
    const tram::socket_address bound = listeners.front().local_address();
    for (unsigned i = 1; i < opts.threads && !handoff; ++i) {
        listeners.push_back(tram::tcp_listener::bind(bound, listen));
    }

    const tram::driver_options driver_options{.batch_completions = opts.batch,
                                              .batch_window =
                                                  std::chrono::microseconds(opts.batch_window_us)};
    std::vector<std::size_t> served(opts.threads, 0); // each written by its worker
    if (opts.threads == 1) {
        tram::driver main_driver(driver_options);
        std::printf("listening on %s\n", bound.to_string().c_str());
        std::fflush(stdout);
        tram::run(main_driver, serve_until_signal(listeners.front(), signals.fd(), served[0]));
        print_served(served);
        return 0;
    }

    // What the workers use outlives the pool, which may destroy their tasks unfinished.
    std::vector<std::promise<void>> done(opts.threads);
    std::vector<std::unique_ptr<connection_inbox>> inboxes(handoff ? opts.threads : 0); // [0]: null
    std::stop_source stop;
    tram::worker_pool_options pool_options;
    pool_options.threads = opts.threads;
    pool_options.driver = driver_options;
    tram::worker_pool pool(pool_options);
    for (unsigned i = 1; i < inboxes.size(); ++i)
        inboxes[i] = std::make_unique<connection_inbox>();
    for (unsigned i = 0; i < opts.threads; ++i) {
        tram::task<> server = !handoff ? serve(listeners[i], served[i])
                              : i == 0 ? serve(listeners[0], served[0], inboxes)
                                       : serve_inbox(*inboxes[i], stop.get_token(), served[i]);
        pool.spawn_on(i, report_end(std::move(server), done[i]).with_stop_token(stop.get_token()));
    }
    std::printf("listening on %s\n", bound.to_string().c_str());
    std::fflush(stdout);
    {
        // The main thread has a driver only while it waits for the signal. A thread whose
        // current driver is not running its loop must not post to the workers (spawn_on above,
        // the inboxes' wake-ups below): driver::schedule_remote would queue the wake-up as a
        // MSG_RING on that driver's ring, which nobody submits any more, and the worker would
        // sleep on. Without one, the wake-up is an eventfd write.
        tram::driver main_driver;
        tram::run(main_driver, wait_for_signal(signals.fd()));
    }
    // The workers' stop callbacks hand the cancellations to their own threads (and close the
    // inboxes, waking the workers that wait on them).
    stop.request_stop();
    for (auto& d : done)
        d.get_future().get();
    print_served(served);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const options opts = parse_options(argc, argv);
    try {
        return run_server(opts);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
