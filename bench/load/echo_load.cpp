// echo_load: a closed-loop TCP echo load generator.
//
// N connections to HOST:PORT; each sends a message of S bytes, waits for all S bytes to come
// back, checks them byte for byte, and sends the next. After a warm-up of W seconds it counts
// for D seconds the messages completed and their round-trip times (a log-linear histogram with
// under 1% error, preallocated), then prints one machine-readable line:
//
//   connections=50 size=64 threads=1 duration_s=3.000 msgs=... msgs_per_s=... p50_us=...
//   p99_us=... p999_us=... max_us=... errors=0 idle_connections=0 total_msgs=...
//
// total_msgs counts every message of the run, warm-up included: what a server's syscall count
// over the whole run (perf stat -p SERVER -- echo_load ...) divides by.
//
// Any echoed byte that differs from what was sent, or a connection the server closes, is an
// error: reported on stderr as it happens, counted in errors=, and the exit status is 1; so is a
// run in which no message completes.
// Each thread (--threads) drives its share of the connections with its own level-triggered
// epoll loop: non-blocking sockets, one read per readiness, one clock read per message.

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

struct options {
    std::string host = "127.0.0.1";
    int port = 7000;
    int connections = 50;
    std::size_t size = 64;
    double duration_s = 5.0;
    double warmup_s = 1.0;
    int threads = 1;
    bool csv = false;
};

void print_usage(FILE* out) {
    std::fprintf(
        out, "usage: echo_load [options]\n"
             "  Closed-loop TCP echo load: each connection sends SIZE bytes, waits for the full\n"
             "  echo (checked byte for byte), then sends the next message.\n"
             "  --host ADDR          server IPv4 address (default 127.0.0.1)\n"
             "  --port PORT          server port (default 7000)\n"
             "  --connections N, -c  concurrent connections (default 50)\n"
             "  --size BYTES, -s     message size, 1..16777216 (default 64)\n"
             "  --duration SEC, -d   measured time (default 5)\n"
             "  --warmup SEC, -w     unmeasured time before it (default 1)\n"
             "  --threads T, -t      client threads, each with its own epoll (default 1)\n"
             "  --csv                print a CSV header and row instead of key=value\n"
             "Output: connections= size= threads= duration_s= msgs= msgs_per_s= p50_us= p99_us=\n"
             "        p999_us= max_us= errors= idle_connections= total_msgs= (warm-up included)\n"
             "        exit status 1 when errors > 0 or no message completed\n");
}

[[noreturn]] void usage_error(const char* what, const char* value) {
    std::fprintf(stderr, "echo_load: %s '%s'\n", what, value);
    print_usage(stderr);
    std::exit(2);
}

double parse_number(const char* value, double low, double high) {
    char* end = nullptr;
    double v = std::strtod(value, &end);
    if (end == value || *end != '\0' || !(v >= low && v <= high)) usage_error("bad number", value);
    return v;
}

options parse_options(int argc, char** argv) {
    options opts;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout);
            std::exit(0);
        }
        if (arg == "--csv") {
            opts.csv = true;
            continue;
        }
        if (i + 1 >= argc) usage_error("unknown or incomplete argument", argv[i]);
        const char* value = argv[++i];
        if (arg == "--host") {
            opts.host = value;
        } else if (arg == "--port") {
            opts.port = static_cast<int>(parse_number(value, 1, 65535));
        } else if (arg == "--connections" || arg == "-c") {
            opts.connections = static_cast<int>(parse_number(value, 1, 1000000));
        } else if (arg == "--size" || arg == "-s") {
            opts.size = static_cast<std::size_t>(parse_number(value, 1, 16 << 20));
        } else if (arg == "--duration" || arg == "-d") {
            opts.duration_s = parse_number(value, 0.01, 86400);
        } else if (arg == "--warmup" || arg == "-w") {
            opts.warmup_s = parse_number(value, 0, 86400);
        } else if (arg == "--threads" || arg == "-t") {
            opts.threads = static_cast<int>(parse_number(value, 1, 1024));
        } else {
            usage_error("unknown argument", argv[i - 1]);
        }
    }
    opts.threads = std::min(opts.threads, opts.connections);
    return opts;
}

using nanoseconds = std::int64_t;

nanoseconds now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<nanoseconds>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Log-linear histogram of nanoseconds: exact below 256 ns, then 128 sub-buckets per power of
// two (relative error under 0.8%), up to 2^47 ns (39 hours).
class histogram {
public:
    static constexpr int sub_bits = 7;
    static constexpr int exact_limit = 2 << sub_bits; // 256
    static constexpr int max_shift = 40;
    static constexpr std::size_t bucket_count =
        exact_limit + static_cast<std::size_t>(max_shift) * (1u << sub_bits);

    histogram()
        : counts_(bucket_count, 0) {}

    void record(nanoseconds value) noexcept {
        auto v = static_cast<std::uint64_t>(std::max<nanoseconds>(value, 0));
        ++counts_[index_of(v)];
        ++total_;
        max_ = std::max(max_, v);
    }

    void merge(const histogram& other) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i)
            counts_[i] += other.counts_[i];
        total_ += other.total_;
        max_ = std::max(max_, other.max_);
    }

    [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

    // The value at quantile q (0..1): the midpoint of the bucket holding that rank.
    [[nodiscard]] double quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(midpoint_of(i), static_cast<double>(max_));
        }
        return static_cast<double>(max_);
    }

private:
    static std::size_t index_of(std::uint64_t v) noexcept {
        if (v < exact_limit) return static_cast<std::size_t>(v);
        int shift = 64 - __builtin_clzll(v) - (sub_bits + 1); // v >> shift in [128, 256)
        if (shift > max_shift) return bucket_count - 1;
        return exact_limit + static_cast<std::size_t>(shift - 1) * (1u << sub_bits) +
               static_cast<std::size_t>((v >> shift) - (1u << sub_bits));
    }

    static double midpoint_of(std::size_t i) noexcept {
        if (i < exact_limit) return static_cast<double>(i);
        std::size_t k = i - exact_limit;
        int shift = static_cast<int>(k >> sub_bits) + 1;
        double low =
            static_cast<double>(((k & ((1u << sub_bits) - 1)) + (1u << sub_bits)) << shift);
        return low + static_cast<double>(std::uint64_t{1} << shift) / 2;
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

// What every connection sends: message k of connection c is pattern[offset .. offset+size)
// with offset = (c * 31 + k) % 251, so a reordered, duplicated, or foreign echo differs.
constexpr std::size_t pattern_offsets = 251;

std::vector<unsigned char> make_pattern(std::size_t size) {
    std::vector<unsigned char> pattern(size + pattern_offsets);
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& byte : pattern) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        byte = static_cast<unsigned char>(x);
    }
    return pattern;
}

struct connection {
    int fd = -1;
    int id = 0;
    std::uint64_t seq = 0;
    std::size_t sent = 0;     // bytes of the current message written
    std::size_t received = 0; // bytes of the current message read back
    nanoseconds started = 0;
    std::uint64_t measured = 0; // messages completed inside the measured window
    bool watching_output = false;
    bool failed = false;
    unsigned char* receive_buffer = nullptr;
};

struct shared_run {
    const options* opts = nullptr;
    const unsigned char* pattern = nullptr;
    nanoseconds measure_from = 0;
    nanoseconds measure_until = 0;
};

struct thread_result {
    histogram latencies;
    std::uint64_t messages = 0;
    std::uint64_t all_messages = 0; // warm-up included, to set against a server's whole run
    std::uint64_t errors = 0;
    std::uint64_t idle_connections = 0;
};

class worker {
public:
    worker(const shared_run& run, std::vector<connection*> conns)
        : run_(run)
        , conns_(std::move(conns)) {}

    void operator()() {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) {
            std::fprintf(stderr, "echo_load: epoll_create1: %s\n", std::strerror(errno));
            result_.errors += conns_.size();
            return;
        }
        for (connection* c : conns_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = c;
            if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                fail(*c, "epoll_ctl", errno);
                continue;
            }
            c->started = now_ns();
            send_some(*c);
        }
        loop();
        for (connection* c : conns_) {
            if (!c->failed && c->measured == 0) ++result_.idle_connections;
        }
        ::close(epoll_fd_);
    }

    thread_result& result() noexcept { return result_; }

private:
    void loop() {
        constexpr int max_events = 1024;
        epoll_event events[max_events];
        // Bounded by the clock: every turn waits at most until the end of the run.
        for (;;) {
            nanoseconds now = now_ns();
            if (now >= run_.measure_until) return;
            int timeout_ms = static_cast<int>((run_.measure_until - now) / 1'000'000) + 1;
            int n = ::epoll_wait(epoll_fd_, events, max_events, timeout_ms);
            if (n < 0) {
                if (errno == EINTR) continue;
                std::fprintf(stderr, "echo_load: epoll_wait: %s\n", std::strerror(errno));
                ++result_.errors;
                return;
            }
            for (int i = 0; i < n; ++i) {
                auto* c = static_cast<connection*>(events[i].data.ptr);
                if (c->failed) continue;
                if ((events[i].events & EPOLLOUT) && c->sent < run_.opts->size) send_some(*c);
                if (!c->failed && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    receive_some(*c);
            }
        }
    }

    [[nodiscard]] const unsigned char* message_of(const connection& c) const noexcept {
        return run_.pattern + (static_cast<std::uint64_t>(c.id) * 31 + c.seq) % pattern_offsets;
    }

    void fail(connection& c, const char* what, int err) {
        std::fprintf(stderr, "echo_load: connection %d, message %" PRIu64 ": %s: %s\n", c.id, c.seq,
                     what, err != 0 ? std::strerror(err) : "");
        ++result_.errors;
        c.failed = true;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    }

    void watch_output(connection& c, bool on) {
        if (c.watching_output == on) return;
        epoll_event ev{};
        ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
        ev.data.ptr = &c;
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) < 0)
            return fail(c, "epoll_ctl", errno);
        c.watching_output = on;
    }

    void send_some(connection& c) {
        const std::size_t size = run_.opts->size;
        const unsigned char* message = message_of(c);
        // Bounded: each pass writes at least one byte or stops.
        while (c.sent < size) {
            ssize_t n = ::send(c.fd, message + c.sent, size - c.sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return watch_output(c, true);
                return fail(c, "send", errno);
            }
            c.sent += static_cast<std::size_t>(n);
        }
        watch_output(c, false);
    }

    void receive_some(connection& c) {
        const std::size_t size = run_.opts->size;
        ssize_t n = ::recv(c.fd, c.receive_buffer + c.received, size - c.received, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return fail(c, "recv", errno);
        }
        if (n == 0) return fail(c, "server closed the connection", 0);
        c.received += static_cast<std::size_t>(n);
        if (c.received < size) return;
        if (c.sent < size) return fail(c, "echo arrived before the message was sent", 0);
        const unsigned char* expected = message_of(c);
        if (std::memcmp(c.receive_buffer, expected, size) != 0) {
            std::size_t at = 0;
            while (c.receive_buffer[at] == expected[at])
                ++at; // bounded: a byte differs
            std::fprintf(stderr,
                         "echo_load: MISMATCH on connection %d, message %" PRIu64
                         ", byte %zu: expected 0x%02x, got 0x%02x\n",
                         c.id, c.seq, at, expected[at], c.receive_buffer[at]);
            ++result_.errors;
            c.failed = true;
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
            return;
        }
        nanoseconds now = now_ns();
        ++result_.all_messages;
        if (now >= run_.measure_from && now < run_.measure_until) {
            result_.latencies.record(now - c.started);
            ++result_.messages;
            ++c.measured;
        }
        ++c.seq;
        c.sent = 0;
        c.received = 0;
        c.started = now;
        send_some(c);
    }

    const shared_run& run_;
    std::vector<connection*> conns_;
    int epoll_fd_ = -1;
    thread_result result_;
};

void raise_file_limit(int needed) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    if (limit.rlim_cur >= static_cast<rlim_t>(needed)) return;
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(needed));
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

int connect_to(const sockaddr_in& addr, const options& opts, int id) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        std::fprintf(stderr, "echo_load: socket for connection %d: %s\n", id, std::strerror(errno));
        std::exit(1);
    }
    timeval timeout{5, 0}; // connect gives up after SO_SNDTIMEO
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "echo_load: connect %s:%d (connection %d): %s\n", opts.host.c_str(),
                     opts.port, id, std::strerror(errno));
        std::exit(1);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    const options opts = parse_options(argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    raise_file_limit(opts.connections + 64);

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(opts.port));
    if (::inet_pton(AF_INET, opts.host.c_str(), &addr.sin_addr) != 1)
        usage_error("bad IPv4 address", opts.host.c_str());

    const std::vector<unsigned char> pattern = make_pattern(opts.size);
    std::vector<unsigned char> receive_memory(opts.size *
                                              static_cast<std::size_t>(opts.connections));
    std::vector<connection> conns(static_cast<std::size_t>(opts.connections));
    for (int i = 0; i < opts.connections; ++i) {
        connection& c = conns[static_cast<std::size_t>(i)];
        c.id = i;
        c.fd = connect_to(addr, opts, i);
        c.receive_buffer = receive_memory.data() + opts.size * static_cast<std::size_t>(i);
    }

    shared_run run;
    run.opts = &opts;
    run.pattern = pattern.data();
    const nanoseconds start = now_ns();
    run.measure_from = start + static_cast<nanoseconds>(opts.warmup_s * 1e9);
    run.measure_until = run.measure_from + static_cast<nanoseconds>(opts.duration_s * 1e9);

    std::vector<std::unique_ptr<worker>> workers;
    for (int t = 0; t < opts.threads; ++t) {
        std::vector<connection*> mine;
        for (int i = t; i < opts.connections; i += opts.threads)
            mine.push_back(&conns[static_cast<std::size_t>(i)]);
        workers.push_back(std::make_unique<worker>(run, std::move(mine)));
    }
    std::vector<std::thread> threads;
    for (int t = 1; t < opts.threads; ++t)
        threads.emplace_back(std::ref(*workers[t]));
    (*workers[0])();
    for (auto& th : threads)
        th.join();

    thread_result total;
    for (auto& w : workers) {
        total.latencies.merge(w->result().latencies);
        total.messages += w->result().messages;
        total.all_messages += w->result().all_messages;
        total.errors += w->result().errors;
        total.idle_connections += w->result().idle_connections;
    }
    for (connection& c : conns)
        ::close(c.fd);

    const double msgs_per_s = static_cast<double>(total.messages) / opts.duration_s;
    const double p50 = total.latencies.quantile(0.50) / 1e3;
    const double p99 = total.latencies.quantile(0.99) / 1e3;
    const double p999 = total.latencies.quantile(0.999) / 1e3;
    const double max = static_cast<double>(total.latencies.max()) / 1e3;
    if (opts.csv) {
        std::printf("connections,size,threads,duration_s,msgs,msgs_per_s,p50_us,p99_us,p999_us,"
                    "max_us,errors,idle_connections,total_msgs\n");
        std::printf("%d,%zu,%d,%.3f,%" PRIu64 ",%.0f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",%" PRIu64
                    ",%" PRIu64 "\n",
                    opts.connections, opts.size, opts.threads, opts.duration_s, total.messages,
                    msgs_per_s, p50, p99, p999, max, total.errors, total.idle_connections,
                    total.all_messages);
    } else {
        std::printf("connections=%d size=%zu threads=%d duration_s=%.3f msgs=%" PRIu64
                    " msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f"
                    " errors=%" PRIu64 " idle_connections=%" PRIu64 " total_msgs=%" PRIu64 "\n",
                    opts.connections, opts.size, opts.threads, opts.duration_s, total.messages,
                    msgs_per_s, p50, p99, p999, max, total.errors, total.idle_connections,
                    total.all_messages);
    }
    std::fflush(stdout);
    if (total.idle_connections > 0)
        std::fprintf(stderr,
                     "echo_load: %" PRIu64 " connections completed no message while measured\n",
                     total.idle_connections);
    if (total.messages == 0) {
        std::fprintf(stderr, "echo_load: no message completed in the measured window\n");
        return 1;
    }
    return total.errors == 0 ? 0 : 1;
}
