// http_server: serves the files of one directory over HTTP/1.1, through io_uring.
//
// Each worker thread has its own ring, its own file cache and its own idle sweep; a connection
// lives on the worker that starts it. With --threads N > 1, connections reach the workers in one
// of two ways (--accept):
//  - reuseport: each worker accepts on its own SO_REUSEPORT listener of the port, and the
//    kernel spreads connections over them by a hash of the addresses;
//  - handoff: worker 0 alone listens and deals the accepted connections out round-robin over
//    every worker, itself included, through each worker's tram::inbox (see connection_inbox).
// At exit it prints how many connections each worker served ("connections per worker: N M").
// Per connection, the answers to the requests received so far and the receive of the next ones
// go to the kernel as one chain of linked SQEs, so a keep-alive client costs one CQE per round,
// and the loop one io_uring_enter per turn for all its connections. See file_cache.hpp for how
// files are opened (openat2 beneath the root) and how long they are trusted.
#include "connection.hpp"
#include "file_cache.hpp"

#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr std::string_view usage =
    "Usage: http_server --root DIR [--host H] [--port P] [--threads N] [options]\n"
    "Serves the files under DIR over HTTP/1.1 (GET, HEAD, keep-alive, pipelining, single byte\n"
    "ranges), through io_uring.\n"
    "  --root DIR            directory to serve (required)\n"
    "  --host H              address to listen on (default 127.0.0.1)\n"
    "  --port P              port (default 8080; 0: the kernel picks one)\n"
    "  --threads N           worker threads, each with its own ring and file cache (default 1)\n"
    "  --accept MODE         with N > 1: 'reuseport', a SO_REUSEPORT listener per worker, or\n"
    "                        'handoff', one listener whose worker deals connections out\n"
    "                        round-robin (default handoff)\n"
    "  --idle-timeout-ms MS  close connections idle this long (default 10000)\n"
    "  --header-timeout-ms MS\n"
    "                        a request head must be whole this long after its first byte;\n"
    "                        beyond it, 408 and close (default 10000)\n"
    "  --max-header BYTES    largest request head; beyond it, 431 (default 8192)\n"
    "  --max-body BYTES      largest request body, read and dropped; beyond it, 413 and close\n"
    "                        (default 65536)\n"
    "  --cache-ttl-ms MS     how long a file is served as last seen (default 1000)\n"
    "  --cache-max-file B    files up to B bytes are sent from memory, larger ones spliced\n"
    "                        from the page cache (default 4096; 0: always splice)\n"
    "  --help                this text\n"
    "Prints `listening on HOST:PORT` once ready; SIGINT or SIGTERM stops it (exit 0), after\n"
    "`connections per worker: N...`.\n";

// How connections reach the workers with --threads N > 1 (see the top of the file).
enum class accept_mode { reuseport, handoff };

struct options {
    std::string root;
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 1;
    // The faster of the two in bench/scripts/http_compare.py's scaling runs (see README).
    accept_mode accept = accept_mode::handoff;
    http_server::connection_options limits;
    http_server::cache_options cache;
};

template <typename Number>
bool parse_number(std::string_view text, Number& value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
}

// Gives 0 to go on, else the exit status (0 after --help).
int parse_options(int argc, char* argv[], options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help") {
            std::fputs(usage.data(), stdout);
            return -1;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "http_server: %s needs a value (or is unknown)\n%s", argv[i],
                         usage.data());
            return 2;
        }
        const std::string_view value = argv[++i];
        bool ok = true;
        std::uint64_t number = 0;
        if (arg == "--root") {
            o.root = value;
        } else if (arg == "--host") {
            o.host = value;
        } else if (arg == "--port") {
            ok = parse_number(value, o.port);
        } else if (arg == "--threads") {
            ok = parse_number(value, o.threads) && o.threads >= 1 && o.threads <= 1024;
        } else if (arg == "--accept") {
            ok = value == "reuseport" || value == "handoff";
            o.accept = value == "reuseport" ? accept_mode::reuseport : accept_mode::handoff;
        } else if (arg == "--idle-timeout-ms") {
            ok = parse_number(value, number) && number > 0;
            o.limits.idle_timeout = std::chrono::milliseconds(number);
        } else if (arg == "--header-timeout-ms") {
            ok = parse_number(value, number) && number > 0;
            o.limits.header_timeout = std::chrono::milliseconds(number);
        } else if (arg == "--max-body") {
            ok = parse_number(value, o.limits.max_body);
        } else if (arg == "--max-header") {
            ok = parse_number(value, o.limits.max_head) && o.limits.max_head >= 64 &&
                 o.limits.max_head <= 1024 * 1024;
        } else if (arg == "--cache-ttl-ms") {
            ok = parse_number(value, number);
            o.cache.ttl = std::chrono::milliseconds(number);
        } else if (arg == "--cache-max-file") {
            ok = parse_number(value, o.cache.max_memory_file);
        } else {
            std::fprintf(stderr, "http_server: unknown option %s\n%s", argv[i - 1], usage.data());
            return 2;
        }
        if (!ok) {
            std::fprintf(stderr, "http_server: bad value for %s: %s\n", argv[i - 1], argv[i]);
            return 2;
        }
    }
    if (o.root.empty()) {
        std::fprintf(stderr, "http_server: --root DIR is required\n%s", usage.data());
        return 2;
    }
    return 0;
}

// --accept handoff: what the accepting worker hands another one, a connection's descriptor.
// The workers are threads of one process and share its descriptor table, so a descriptor
// accepted through worker 0's ring is valid as is on every worker. Coroutine frames do not
// cross: the receiving worker starts the connection's task itself (serve_inbox), so every
// frame is allocated and freed on the thread that runs it. A burst costs one wake-up (the push
// that finds the worker waiting: a MSG_RING riding along with worker 0's next io_uring_enter).
// A descriptor never taken (the server stopped first) is closed with the inbox: each item owns
// its descriptor.
using connection_inbox = tram::inbox<tram::descriptor>;

/// What one worker serves: the state its connections share, and where they come from.
struct worker {
    worker(int root_fd, const options& o)
        : context(http_server::file_cache(root_fd, o.cache), o.limits) {}
    http_server::worker_context context;
    std::optional<tram::tcp_listener> listener; // none: a handoff worker other than 0
    connection_inbox inbox;                     // handoff: what worker 0 deals to this one
    std::size_t served = 0; // connections started here; read once the worker is gone
};

void start(worker& w, tram::tcp_stream stream) {
    ++w.served;
    tram::spawn(http_server::serve_connection(w.context, std::move(stream)));
}

// Accepts on `w`'s listener. With `deal` (--accept handoff: every worker, `w` included), the
// connections go to them in turn; `w`'s own share starts here, with no hop.
tram::task<> accept_connections(worker& w, std::span<const std::unique_ptr<worker>> deal) {
    auto incoming = w.listener->incoming();
    std::size_t turn = 0;
    for (;;) {
        bool failed = false;
        try {
            tram::tcp_stream stream = co_await incoming.next();
            worker& to = deal.empty() ? w : *deal[turn++ % deal.size()];
            if (&to == &w) {
                start(w, std::move(stream));
            } else {
                to.inbox.push(tram::descriptor(stream.release()));
            }
        } catch (const tram::error& e) {
            if (e.errnum() == ECANCELED) co_return;
            std::fprintf(stderr, "http_server: %s\n", e.what());
            failed = true;
        }
        // Out of descriptors (EMFILE, ENFILE) or memory: the kernel gives no notice when one
        // frees, so wait a little; clients wait in the backlog meanwhile.
        if (failed) co_await tram::sleep_for(100ms);
    }
}

// The idle sweep: a timer per worker rather than one per receive, so a request costs no
// timer SQE; a connection is shut down between one and 1.25 timeouts after its last byte (or
// after the first byte of a late request).
tram::task<> sweep_idle(worker& w) {
    const http_server::connection_options& limits = w.context.limits;
    const auto tick = std::clamp<std::chrono::milliseconds>(
        std::min(limits.idle_timeout, limits.header_timeout) / 4, 10ms, 1000ms);
    for (;;) {
        const tram::io_result r = co_await tram::sleep_for(tick);
        if (r.cancelled()) co_return;
        w.context.shut_idle(std::chrono::steady_clock::now());
    }
}

// --accept handoff, on a worker that does not accept: starts what its inbox brings. Ends only
// with the worker (the pool's shutdown destroys it as it waits, which unregisters it).
tram::task<> serve_inbox(worker& w) {
    std::vector<tram::descriptor> batch;
    while (co_await w.inbox.next(batch)) {
        for (tram::descriptor& fd : batch)
            start(w, tram::tcp_stream(std::move(fd)));
    }
}

tram::task<> serve(worker& w, std::span<const std::unique_ptr<worker>> deal) {
    tram::spawn(sweep_idle(w));
    if (w.listener) {
        co_await accept_connections(w, deal);
    } else {
        co_await serve_inbox(w);
    }
}

// Returns when SIGINT or SIGTERM arrives (read from a signalfd through the ring).
tram::task<> wait_for_signal(int signal_fd) {
    const tram::file signals = tram::file::adopt(signal_fd, "signalfd");
    signalfd_siginfo info{};
    (void)co_await signals.read(std::as_writable_bytes(std::span(&info, 1)));
}

tram::socket_address listen_address(const options& o) {
    const bool ipv6 = o.host.find(':') != std::string::npos && o.host.front() != '[';
    return tram::socket_address::parse((ipv6 ? "[" + o.host + "]" : o.host) + ":" +
                                       std::to_string(o.port));
}

} // namespace

int main(int argc, char* argv[]) {
    options o;
    if (const int status = parse_options(argc, argv, o); status != 0)
        return status < 0 ? 0 : status;

    // Signals become readable data on a descriptor: blocked in every thread (the workers
    // inherit the mask), taken by one read through the ring.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN); // sends pass MSG_NOSIGNAL; splice to a closed socket does not
    const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        std::perror("http_server: signalfd");
        return 1;
    }

    const int root_fd = ::open(o.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::fprintf(stderr, "http_server: root %s: %s\n", o.root.c_str(), std::strerror(errno));
        return 1;
    }

    try {
        // Declared before the pool, so that the workers' state (their inboxes included)
        // outlives the tasks that the pool's shutdown destroys unfinished.
        std::vector<std::unique_ptr<worker>> workers;
        for (unsigned i = 0; i < o.threads; ++i)
            workers.push_back(std::make_unique<worker>(root_fd, o));
        const bool handoff = o.threads > 1 && o.accept == accept_mode::handoff;
        tram::listen_options lo;
        lo.reuse_port = o.threads > 1 && !handoff;
        tram::socket_address address = listen_address(o);
        for (unsigned i = 0; i < (handoff ? 1 : o.threads); ++i) {
            workers[i]->listener = tram::tcp_listener::bind(address, lo);
            // Port 0: the others join the port the kernel picked for the first.
            address = workers.front()->listener->local_address();
        }
        std::printf("listening on %s\n", address.to_string().c_str());
        std::fflush(stdout);

        if (o.threads == 1) {
            tram::driver driver;
            tram::spawn(driver, serve(*workers.front(), {}));
            tram::run(driver, wait_for_signal(signal_fd));
        } else {
            tram::worker_pool_options po;
            po.threads = o.threads;
            tram::worker_pool pool(po);
            const std::span<const std::unique_ptr<worker>> deal(workers);
            for (unsigned i = 0; i < o.threads; ++i)
                pool.spawn_on(i, serve(*workers[i], handoff ? deal : deal.first(0)));
            // The main thread has a driver only while it waits for the signal, after the
            // spawn_on calls: from a thread whose driver is not looping, schedule_remote would
            // queue the wake-up as a MSG_RING on that ring, which nobody submits. (Only the
            // workers push to the inboxes.) Destroying the pool then stops every worker and
            // destroys its connections and its inbox wait on its own thread.
            tram::driver driver;
            tram::run(driver, wait_for_signal(signal_fd));
        }
        // The workers are gone (joined): their counts are safe to read.
        std::printf("connections per worker:");
        for (const auto& w : workers)
            std::printf(" %zu", w->served);
        std::printf("\n");
        std::fflush(stdout);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
