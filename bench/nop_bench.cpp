// NOP throughput of the ring layer: how fast SQEs go in and CQEs come out when the op itself
// costs nothing. Each step prepares `batch` NOPs, submits them and waits for all of their
// completions with one io_uring_enter, then consumes the completions.
//
// When liburing is available (TRAM_HAVE_LIBURING), the same loop runs over liburing in the same
// process, with the same setup flags and a registered ring fd for both, run after run
// alternating, so that both see the same machine noise; the table shows the ratio of the
// medians.
#include <tram/error.hpp>
#include <tram/ring.hpp>
#include <tram/setup.hpp>
#include <tram/sqe.hpp>

#ifdef TRAM_HAVE_LIBURING
#include <liburing.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    std::vector<unsigned> batches{1, 8, 32, 128};
    unsigned runs = 15;
    double seconds = 0.2;
    std::string setup = "defer_taskrun";
    std::optional<std::string> csv;
    bool run_tram = true;
    bool run_liburing = true;
    bool peer_plain_fd = false;
    bool no_sqarray = false;
    std::uint64_t ops = 0; // > 0: a fixed number of NOPs per run instead of a timed run
};

void print_help(const char* argv0) {
    std::printf(
        "Usage: %s [options]\n"
        "NOP throughput of tram's ring layer (and of liburing, when built with it).\n\n"
        "  --batch LIST     batch sizes, comma-separated (default 1,8,32,128)\n"
        "  --runs N         measured runs per batch and system; the median is shown (default 15)\n"
        "  --seconds S      length of each run (default 0.2)\n"
        "  --setup MODE     ring setup flags for both systems: none, single_issuer,\n"
        "                   defer_taskrun (single_issuer|defer_taskrun; the default),\n"
        "                   coop_taskrun (coop_taskrun|taskrun_flag)\n"
        "  --only SYSTEM    run only tram or only liburing (for profilers)\n"
        "  --peer-plain-fd  liburing enters through its plain ring fd, as it does by default\n"
        "                   (tram still uses its registered one): not an equal comparison\n"
        "  --no-sqarray     tram's ring also gets IORING_SETUP_NO_SQARRAY (6.6), which tram\n"
        "                   supports and Debian's liburing 2.3 does not\n"
        "  --ops N          run exactly N NOPs per run instead of timing (for profilers)\n"
        "  --csv FILE       also write rows workload,setting,system,metric,value to FILE\n"
        "  --help           this text\n",
        argv0);
}

std::vector<unsigned> parse_list(const std::string& text) {
    std::vector<unsigned> values;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        const unsigned long v = std::stoul(text.substr(pos, comma - pos));
        if (v == 0 || v > 4096) throw std::invalid_argument("batch sizes must be 1..4096");
        values.push_back(static_cast<unsigned>(v));
        pos = comma + 1;
    }
    return values;
}

options parse_options(int argc, char* argv[]) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            print_help(argv[0]);
            std::exit(0);
        } else if (arg == "--batch") {
            opt.batches = parse_list(value());
        } else if (arg == "--runs") {
            opt.runs = static_cast<unsigned>(std::max(1UL, std::stoul(value())));
        } else if (arg == "--seconds") {
            opt.seconds = std::stod(value());
        } else if (arg == "--setup") {
            opt.setup = value();
        } else if (arg == "--csv") {
            opt.csv = value();
        } else if (arg == "--ops") {
            opt.ops = std::stoull(value());
        } else if (arg == "--no-sqarray") {
            opt.no_sqarray = true;
        } else if (arg == "--peer-plain-fd") {
            opt.peer_plain_fd = true;
        } else if (arg == "--only") {
            const std::string system = value();
            if (system != "tram" && system != "liburing") {
                throw std::invalid_argument("--only takes tram or liburing");
            }
            opt.run_tram = system == "tram";
            opt.run_liburing = system == "liburing";
        } else {
            throw std::invalid_argument("unknown option " + std::string(arg) + " (try --help)");
        }
    }
    return opt;
}

tram::setup_flags setup_flags_for(const std::string& mode) {
    using tram::setup_flag;
    if (mode == "none") return {};
    if (mode == "single_issuer") return tram::setup_flags{setup_flag::single_issuer};
    if (mode == "defer_taskrun")
        return tram::setup_flags{setup_flag::single_issuer} | setup_flag::defer_taskrun;
    if (mode == "coop_taskrun")
        return tram::setup_flags{setup_flag::coop_taskrun} | setup_flag::taskrun_flag;
    throw std::invalid_argument("unknown --setup mode " + mode + " (try --help)");
}

// Runs `step` (which handles `batch` NOPs) until `seconds` have passed (or, with `ops`, until
// that many NOPs are done), reading the clock only every few steps so that timing costs the
// same, next to nothing, for every system.
template <typename Step>
double nops_per_second(Step& step, unsigned batch, double seconds, std::uint64_t ops = 0) {
    const unsigned steps_per_check = std::max(1U, 256U / batch);
    const auto start = clock_type::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    std::uint64_t done = 0;
    auto now = start;
    do {
        for (unsigned i = 0; i < steps_per_check; ++i)
            step(batch);
        done += std::uint64_t{steps_per_check} * batch;
        now = clock_type::now();
    } while (ops ? done < ops : now < deadline);
    return static_cast<double>(done) / std::chrono::duration<double>(now - start).count();
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "nop_bench: %s\n", what.c_str());
    std::exit(1);
}

// ---- tram -----------------------------------------------------------------------------------

class tram_nops {
public:
    tram_nops(unsigned entries, tram::setup_flags flags)
        : ring_(make_options(entries, flags)) {
        if (!ring_.registered_index()) fail("tram: could not register the ring fd");
    }

    void operator()(unsigned batch) {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = ring_.get_sqe();
            tram::prep_nop(*sqe);
            sqe->user_data = i;
        }
        const int r = ring_.submit_and_wait(batch);
        if (r < 0) fail("tram: submit_and_wait: " + tram::describe_error(-r, "io_uring_enter"));
        unsigned seen = 0;
        for (const tram::completion& c : ring_.completions()) {
            bad_ |= c.result != 0;
            ++seen;
        }
        if (seen != batch)
            fail("tram: expected " + std::to_string(batch) + " completions, got " +
                 std::to_string(seen));
    }

    [[nodiscard]] bool bad() const noexcept { return bad_; }

private:
    static tram::ring_options make_options(unsigned entries, tram::setup_flags flags) {
        tram::ring_options o;
        o.entries = entries;
        o.flags = flags;
        o.register_ring_fd = true;
        return o;
    }

    tram::ring ring_;
    bool bad_ = false;
};

// ---- liburing -------------------------------------------------------------------------------

#ifdef TRAM_HAVE_LIBURING
class liburing_nops {
public:
    liburing_nops(unsigned entries, tram::setup_flags flags, bool register_ring_fd) {
        io_uring_params p{};
        p.flags = flags.bits();
        if (const int r = io_uring_queue_init_params(entries, &ring_, &p); r < 0) {
            fail("liburing: io_uring_queue_init_params: " + tram::describe_error(-r, "setup"));
        }
        if (register_ring_fd && io_uring_register_ring_fd(&ring_) != 1) {
            fail("liburing: could not register the ring fd");
        }
    }
    liburing_nops(const liburing_nops&) = delete;
    liburing_nops& operator=(const liburing_nops&) = delete;
    ~liburing_nops() { io_uring_queue_exit(&ring_); }

    void operator()(unsigned batch) {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            io_uring_prep_nop(sqe);
            sqe->user_data = i;
        }
        const int r = io_uring_submit_and_wait(&ring_, batch);
        if (r < 0) fail("liburing: submit_and_wait: " + tram::describe_error(-r, "io_uring_enter"));
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            bad_ |= cqe->res != 0;
            ++seen;
        }
        io_uring_cq_advance(&ring_, seen);
        if (seen != batch)
            fail("liburing: expected " + std::to_string(batch) + " completions, got " +
                 std::to_string(seen));
    }

    [[nodiscard]] bool bad() const noexcept { return bad_; }

private:
    io_uring ring_{};
    bool bad_ = false;
};
#endif

// ---- Running and reporting ------------------------------------------------------------------

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct result {
    unsigned batch;
    std::optional<double> tram;
    std::optional<double> liburing;
};

std::string format_rate(std::optional<double> per_second) {
    if (!per_second) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fM", *per_second / 1e6);
    return buf;
}

std::string format_ns(std::optional<double> per_second) {
    if (!per_second) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", 1e9 / *per_second);
    return buf;
}

void print_table(const std::vector<result>& results) {
    std::printf("%6s  %12s  %8s  %12s  %8s  %14s\n", "batch", "tram NOPs/s", "ns/NOP", "liburing",
                "ns/NOP", "tram/liburing");
    std::printf("%6s  %12s  %8s  %12s  %8s  %14s\n", "------", "------------", "--------",
                "------------", "--------", "--------------");
    for (const result& r : results) {
        char ratio[32] = "-";
        if (r.tram && r.liburing)
            std::snprintf(ratio, sizeof ratio, "%.2fx", *r.tram / *r.liburing);
        std::printf("%6u  %12s  %8s  %12s  %8s  %14s\n", r.batch, format_rate(r.tram).c_str(),
                    format_ns(r.tram).c_str(), format_rate(r.liburing).c_str(),
                    format_ns(r.liburing).c_str(), ratio);
    }
}

void write_csv(const std::string& path, const std::vector<result>& results) {
    // Appends, like every benchmark of the suite: scripts/bench starts a fresh file per run.
    std::error_code size_error;
    const bool fresh = std::filesystem::file_size(path, size_error) == 0 || size_error;
    std::ofstream out(path, std::ios::app);
    if (!out) fail("cannot write " + path + ": " + std::strerror(errno));
    if (fresh) out << "workload,setting,system,metric,value\n";
    auto row = [&](unsigned batch, const char* system, const char* metric, double value) {
        out << "nop,batch=" << batch << ',' << system << ',' << metric << ',' << value << '\n';
    };
    for (const result& r : results) {
        if (r.tram) {
            row(r.batch, "tram", "ops_per_s", *r.tram);
            row(r.batch, "tram", "ns_per_op", 1e9 / *r.tram);
        }
        if (r.liburing) {
            row(r.batch, "liburing", "ops_per_s", *r.liburing);
            row(r.batch, "liburing", "ns_per_op", 1e9 / *r.liburing);
        }
        if (r.tram && r.liburing) row(r.batch, "tram", "ratio_vs_liburing", *r.tram / *r.liburing);
    }
    if (!out.flush()) fail("writing " + path + " failed");
}

// Measures one system at one batch size: a short warm-up (so that nobody pays for first-touch
// page faults in a measured run), then the runs, whose results go to `runs`.
template <typename Step>
void measure(std::optional<Step>& step, unsigned batch, const options& opt, unsigned run,
             std::vector<double>& runs) {
    if (!step) return;
    if (run == 0) nops_per_second(*step, batch, opt.seconds / 10, opt.ops / 10);
    runs.push_back(nops_per_second(*step, batch, opt.seconds, opt.ops));
}

std::optional<double> median_of(const std::vector<double>& runs) {
    if (runs.empty()) return std::nullopt;
    return median(runs);
}

} // namespace

int main(int argc, char* argv[]) try {
    const options opt = parse_options(argc, argv);
    const tram::setup_flags flags = setup_flags_for(opt.setup);
    const unsigned max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());
    // Both rings get the same size: room for the largest batch.
    unsigned entries = 1;
    while (entries < max_batch)
        entries <<= 1;

    std::optional<tram_nops> tram_step;
    const tram::setup_flags tram_flags =
        opt.no_sqarray ? flags | tram::setup_flag::no_sqarray : flags;
    if (opt.run_tram) tram_step.emplace(entries, tram_flags);
#ifdef TRAM_HAVE_LIBURING
    std::optional<liburing_nops> liburing_step;
    if (opt.run_liburing) liburing_step.emplace(entries, flags, !opt.peer_plain_fd);
    const char* peer = !opt.run_liburing ? "liburing not run (--only tram)"
                       : opt.peer_plain_fd
                           ? "liburing " TRAM_LIBURING_VERSION
                             ", same process, runs interleaved, entering through its PLAIN fd"
                           : "liburing " TRAM_LIBURING_VERSION
                             ", same process, runs interleaved, same setup, registered ring fd";
#else
    const char* peer = "liburing skipped (the benchmark was built without it)";
#endif

    std::printf("NOP throughput: ring of %u entries, setup {%s} (tram: {%s}), registered ring fd; "
                "median of %u runs of %.2f s each\n",
                entries, tram::to_string(flags).c_str(), tram::to_string(tram_flags).c_str(),
                opt.runs, opt.seconds);
    std::printf("peer: %s\n\n", peer);

    std::vector<result> results;
    for (const unsigned batch : opt.batches) {
        std::vector<double> tram_runs;
        std::vector<double> liburing_runs;
        for (unsigned run = 0; run < opt.runs; ++run) {
            // Alternate which goes first, so that neither always runs in the other's wake.
#ifdef TRAM_HAVE_LIBURING
            if (run % 2 == 1) measure(liburing_step, batch, opt, run, liburing_runs);
#endif
            measure(tram_step, batch, opt, run, tram_runs);
#ifdef TRAM_HAVE_LIBURING
            if (run % 2 == 0) measure(liburing_step, batch, opt, run, liburing_runs);
#endif
        }
        results.push_back({batch, median_of(tram_runs), median_of(liburing_runs)});
    }

    if (tram_step && tram_step->bad()) fail("tram: a NOP completed with a non-zero result");
#ifdef TRAM_HAVE_LIBURING
    if (liburing_step && liburing_step->bad())
        fail("liburing: a NOP completed with a non-zero result");
#endif
    print_table(results);
    if (opt.csv) write_csv(*opt.csv, results);
    return 0;
} catch (const tram::error& e) {
    std::fprintf(stderr, "nop_bench: %s\n", e.what());
    return 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "nop_bench: %s\n", e.what());
    return 2;
}
