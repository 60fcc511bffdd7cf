// Random 4 KiB reads of a file through tram's driver: the tram side of bench/fio's
// comparison (bench/scripts/file_compare.py runs both).
//
// Queue depth N is N coroutines, each reading at a random 4 KiB-aligned offset, awaiting the
// read and starting the next: the driver submits what they prepared in one io_uring_enter per
// loop turn, and waits in that same enter. Latency is from just before the read is prepared
// to just after its coroutine resumes (what fio calls clat plus submission), recorded into a
// log-linear histogram, so a run allocates nothing per read.
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/runtime.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t block_size = 4096;

struct options {
    std::string path;
    unsigned queue_depth = 1;
    double seconds = 3;
    double ramp = 0.5;
    bool direct = false;
    bool registered = false;
};

void print_help(const char* argv0) {
    std::printf("Usage: %s --file PATH [options]\n"
                "Random 4 KiB reads of PATH through tram; prints IOPS and latency.\n\n"
                "  --file PATH     the file to read (at least 4 KiB)\n"
                "  --qd N          reads in flight: N coroutines (default 1)\n"
                "  --direct        open with O_DIRECT (bypass the page cache)\n"
                "  --registered    registered file and buffers (READ_FIXED, FIXED_FILE)\n"
                "  --seconds S     measured time (default 3)\n"
                "  --ramp S        unmeasured warm-up before it (default 0.5)\n"
                "  --help          this text\n\n"
                "Last line, for scripts: ops_per_s=.. p50_us=.. p99_us=.. enters_per_op=.. "
                "cpu_us_per_op=.. total_reads=..\n",
                argv0);
}

options parse(int argc, char* argv[]) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--help") {
            print_help(argv[0]);
            std::exit(0);
        } else if (arg == "--file") {
            o.path = value();
        } else if (arg == "--qd") {
            const unsigned long qd = std::stoul(value());
            if (qd == 0 || qd > 4096) throw std::invalid_argument("--qd must be 1..4096");
            o.queue_depth = static_cast<unsigned>(qd);
        } else if (arg == "--seconds") {
            o.seconds = std::stod(value());
        } else if (arg == "--ramp") {
            o.ramp = std::stod(value());
        } else if (arg == "--direct") {
            o.direct = true;
        } else if (arg == "--registered") {
            o.registered = true;
        } else {
            throw std::invalid_argument("unknown option " + std::string(arg));
        }
    }
    if (o.path.empty()) throw std::invalid_argument("--file PATH is required");
    return o;
}

/// Latencies in nanoseconds, log-linear: 32 buckets per power of two (about 3% wide).
class histogram {
public:
    void record(std::uint64_t ns) noexcept {
        ++counts_[index_of(ns)];
        ++total_;
    }
    [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
    /// The smallest latency that `fraction` of the samples do not exceed (bucket midpoint).
    [[nodiscard]] double percentile_ns(double fraction) const noexcept {
        const auto rank = static_cast<std::uint64_t>(fraction * static_cast<double>(total_));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen > rank) return midpoint_of(i);
        }
        return 0;
    }

private:
    static constexpr unsigned sub_bits = 5;
    static constexpr std::uint64_t linear_limit = 1U << sub_bits;

    static std::size_t index_of(std::uint64_t ns) noexcept {
        if (ns < linear_limit) return ns;
        const unsigned shift = 63 - static_cast<unsigned>(__builtin_clzll(ns)) - sub_bits;
        return ((shift + 1) << sub_bits) + ((ns >> shift) - linear_limit);
    }
    static double midpoint_of(std::size_t index) noexcept {
        if (index < linear_limit) return static_cast<double>(index);
        const unsigned shift = static_cast<unsigned>(index >> sub_bits) - 1;
        const std::uint64_t low = (linear_limit + (index & (linear_limit - 1))) << shift;
        return static_cast<double>(low) + static_cast<double>(1ULL << shift) / 2;
    }

    std::array<std::uint64_t, (64 - sub_bits + 1) << sub_bits> counts_{};
    std::uint64_t total_ = 0;
};

/// xorshift64*: cheap, and good enough to scatter offsets over the file.
class random_blocks {
public:
    random_blocks(std::uint64_t seed, std::uint64_t blocks) noexcept
        : state_(seed * 0x9E3779B97F4A7C15ULL | 1)
        , blocks_(blocks) {}
    std::uint64_t next_offset() noexcept {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return ((state_ * 0x2545F4914F6CDD1DULL) % blocks_) * block_size;
    }

private:
    std::uint64_t state_;
    std::uint64_t blocks_;
};

/// User and system CPU time of the process so far, in microseconds.
double cpu_us() noexcept {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
    return us(usage.ru_utime) + us(usage.ru_stime);
}

struct shared_state {
    clock_type::time_point measure_from;
    clock_type::time_point stop_at;
    histogram latencies;
    // CPU time at the end of the ramp (negative until then): the measured reads' CPU cost,
    // as fio's usr_cpu and sys_cpu count its job's.
    double cpu_us_at_start = -1;
};

/// One reader keeping one read in flight until the run ends. `File` is tram::file or
/// tram::direct_file, `Buffer` a std::span or a tram::registered_buffer.
template <typename File, typename Buffer>
tram::task<> reader(const File& f, Buffer buf, random_blocks blocks, shared_state& state) {
    for (;;) {
        const clock_type::time_point start = clock_type::now();
        if (start >= state.stop_at) co_return;
        // Nothing here is ever cancelled: an empty stop token spares each read the
        // cancellation bookkeeping for the token it would inherit from `run` (arming and
        // disarming the coroutine's cancel slot).
        const std::size_t n =
            co_await f.read(buf, blocks.next_offset()).with_stop_token(std::stop_token{});
        if (n != block_size) throw tram::error(EIO, "read " + f.path() + ": short read");
        if (start >= state.measure_from) {
            if (state.cpu_us_at_start < 0) state.cpu_us_at_start = cpu_us();
            state.latencies.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start)
                    .count()));
        }
    }
}

template <typename File, typename Buffers>
tram::task<> read_all(const File& f, const Buffers& buffers, std::uint64_t blocks,
                      shared_state& state) {
    std::vector<tram::task<>> readers;
    readers.reserve(buffers.size());
    for (std::size_t i = 0; i < buffers.size(); ++i) {
        readers.push_back(reader(f, buffers[i], random_blocks(i + 1, blocks), state));
    }
    co_await tram::when_all(std::move(readers));
}

struct results {
    double ops_per_s;
    double p50_us;
    double p99_us;
    double enters_per_op;
    double cpu_us_per_op;
    std::uint64_t total_reads; // ramp included: for counts of system calls over the process
};

tram::task<results> bench(tram::driver& d, const options& o) {
    const int flags = O_RDONLY | (o.direct ? O_DIRECT : 0);
    tram::file f = co_await tram::file::open(o.path, flags);
    const std::uint64_t size = (co_await f.stat()).size();
    if (size < block_size) throw tram::error(EINVAL, "file " + o.path + " is under 4 KiB");
    const std::uint64_t blocks = size / block_size;

    // Page-aligned, as O_DIRECT needs.
    constexpr std::align_val_t alignment{block_size};
    const std::size_t bytes = block_size * o.queue_depth;
    const std::unique_ptr<std::byte, void (*)(std::byte*)> memory(
        static_cast<std::byte*>(::operator new(bytes, alignment)),
        [](std::byte* p) { ::operator delete(p, alignment); });
    std::memset(memory.get(), 0, bytes); // fault the pages in before the clock starts

    shared_state state;
    const clock_type::time_point begin = clock_type::now();
    state.measure_from = begin + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(o.ramp));
    state.stop_at = state.measure_from + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(o.seconds));
    tram::driver_stats before{};
    if (o.registered) {
        tram::registrar reg(d.ring());
        const std::vector<iovec> iovecs = [&] {
            std::vector<iovec> v(o.queue_depth);
            for (unsigned i = 0; i < o.queue_depth; ++i) {
                v[i] = {memory.get() + i * block_size, block_size};
            }
            return v;
        }();
        const std::vector<tram::registered_buffer> buffers = reg.register_buffers(iovecs);
        const int fds[1] = {f.fd()};
        const tram::registered_fd slot = reg.register_files(fds).front();
        const tram::direct_file direct(d, slot.index, o.path);
        before = d.stats();
        co_await read_all(direct, buffers, blocks, state);
    } else {
        std::vector<std::span<std::byte>> buffers;
        for (unsigned i = 0; i < o.queue_depth; ++i) {
            buffers.emplace_back(memory.get() + i * block_size, block_size);
        }
        before = d.stats();
        co_await read_all(f, buffers, blocks, state);
    }
    const double cpu_used = cpu_us() - state.cpu_us_at_start;
    const double ops = static_cast<double>(state.latencies.total());
    // Enters over the whole run (ramp included) per read of the whole run.
    const double all_reads = static_cast<double>(d.stats().cqes_reaped - before.cqes_reaped);
    co_return results{ops / o.seconds,
                      state.latencies.percentile_ns(0.50) / 1e3,
                      state.latencies.percentile_ns(0.99) / 1e3,
                      static_cast<double>(d.stats().enters - before.enters) /
                          std::max(all_reads, 1.0),
                      cpu_used / std::max(ops, 1.0),
                      d.stats().cqes_reaped - before.cqes_reaped};
}

} // namespace

int main(int argc, char* argv[]) {
    try {
        const options o = parse(argc, argv);
        tram::driver d;
        const results r = tram::run(d, bench(d, o));
        std::printf("tram randread 4KiB qd%u %s%s: %.0f ops/s, p50 %.2f us, p99 %.2f us, "
                    "%.3f io_uring_enter and %.2f us of CPU per read\n",
                    o.queue_depth, o.direct ? "direct" : "cached",
                    o.registered ? " registered" : "", r.ops_per_s, r.p50_us, r.p99_us,
                    r.enters_per_op, r.cpu_us_per_op);
        std::printf("ops_per_s=%.0f p50_us=%.3f p99_us=%.3f enters_per_op=%.4f "
                    "cpu_us_per_op=%.3f total_reads=%llu\n",
                    r.ops_per_s, r.p50_us, r.p99_us, r.enters_per_op, r.cpu_us_per_op,
                    static_cast<unsigned long long>(r.total_reads));
        return 0;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "file_read_bench: %s (see --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "file_read_bench: %s\n", e.what());
        return 1;
    }
}
