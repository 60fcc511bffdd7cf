// ring_demo: what this kernel's io_uring offers, seen through tram's ring layer, and how fast
// NOPs go through it.
//
// It sets up a ring, prints the features the kernel reported and which setup flags it accepts,
// lists the ops the kernel supports (and, for each one it lacks, the kernel version that
// brought it), then pushes NOPs through the ring for a moment.
#include <tram/error.hpp>
#include <tram/opcode.hpp>
#include <tram/probe.hpp>
#include <tram/ring.hpp>
#include <tram/setup.hpp>
#include <tram/sqe.hpp>

#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
    unsigned batch = 32;
    double seconds = 0.5;
};

void print_help(const char* argv0) {
    std::printf("Usage: %s [--batch N] [--seconds S]\n"
                "Probes the kernel's io_uring (features, setup flags, supported ops) and runs\n"
                "a short NOP throughput test through tram's ring layer.\n\n"
                "  --batch N     NOPs per submission in the throughput run (default 32)\n"
                "  --seconds S   length of the throughput run (default 0.5)\n"
                "  --help        this text\n",
                argv0);
}

options parse_options(int argc, char* argv[]) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            print_help(argv[0]);
            std::exit(0);
        }
        if (i + 1 >= argc || (arg != "--batch" && arg != "--seconds")) {
            std::fprintf(stderr, "ring_demo: bad argument '%s' (try --help)\n", argv[i]);
            std::exit(2);
        }
        const std::string value = argv[++i];
        if (arg == "--batch") {
            opt.batch = static_cast<unsigned>(std::strtoul(value.c_str(), nullptr, 10));
            if (opt.batch == 0 || opt.batch > 4096) {
                std::fprintf(stderr, "ring_demo: --batch must be 1..4096\n");
                std::exit(2);
            }
        } else {
            opt.seconds = std::strtod(value.c_str(), nullptr);
        }
    }
    return opt;
}

// Which setup flags this kernel accepts, tried one at a time on a tiny ring (flags that need
// companions are tried with them).
void print_setup_flags() {
    using tram::setup_flag;
    struct candidate {
        const char* name;
        tram::setup_flags flags;
    };
    const std::vector<candidate> candidates{
        {"sqpoll", tram::setup_flags{setup_flag::sqpoll}},
        {"iopoll", tram::setup_flags{setup_flag::iopoll}},
        {"clamp", tram::setup_flags{setup_flag::clamp}},
        {"r_disabled", tram::setup_flags{setup_flag::r_disabled}},
        {"submit_all", tram::setup_flags{setup_flag::submit_all}},
        {"coop_taskrun", tram::setup_flags{setup_flag::coop_taskrun}},
        {"taskrun_flag", tram::setup_flags{setup_flag::coop_taskrun} | setup_flag::taskrun_flag},
        {"sqe128", tram::setup_flags{setup_flag::sqe128}},
        {"cqe32", tram::setup_flags{setup_flag::cqe32}},
        {"single_issuer", tram::setup_flags{setup_flag::single_issuer}},
        {"defer_taskrun", tram::setup_flags{setup_flag::single_issuer} | setup_flag::defer_taskrun},
        {"no_sqarray", tram::setup_flags{setup_flag::no_sqarray}},
    };
    std::string accepted;
    std::string rejected;
    for (const candidate& c : candidates) {
        tram::ring_options o;
        o.entries = 4;
        o.flags = c.flags;
        o.register_ring_fd = false;
        std::string& list = [&]() -> std::string& {
            try {
                tram::ring r(o);
                return accepted;
            } catch (const tram::error&) {
                return rejected;
            }
        }();
        list += list.empty() ? "" : ", ";
        list += c.name;
    }
    std::printf("setup flags accepted: %s\n", accepted.c_str());
    std::printf("setup flags rejected: %s\n", rejected.empty() ? "(none)" : rejected.c_str());
}

void print_ops(const tram::probe& probe) {
    std::vector<std::string> lines{"  "};
    std::vector<tram::opcode> missing;
    unsigned count = 0;
    for (unsigned i = 0; i < tram::opcode_count; ++i) {
        const auto op = static_cast<tram::opcode>(i);
        if (!probe.supports(op)) {
            missing.push_back(op);
            continue;
        }
        ++count;
        const std::string_view name = tram::to_string(op);
        if (lines.back().size() + name.size() + 1 > 96) lines.emplace_back("  ");
        lines.back() += name;
        lines.back() += ' ';
    }
    std::printf("ops supported (%u of the %u tram knows; the kernel's highest op number is %u):\n",
                count, tram::opcode_count, probe.last_op());
    for (const std::string& line : lines)
        std::printf("%s\n", line.c_str());
    if (missing.empty()) {
        std::printf("ops missing: none\n");
        return;
    }
    std::printf("ops missing (and the kernel that brought them):\n");
    for (const tram::opcode op : missing) {
        std::printf("  %-18s Linux %s\n", std::string(tram::to_string(op)).c_str(),
                    std::string(tram::first_kernel_with(op)).c_str());
    }
}

// Prepares `batch` NOPs, submits them and waits for their completions, over and over.
void run_nops(tram::ring& ring, unsigned batch, double seconds) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    std::uint64_t done = 0;
    auto now = start;
    while (now < deadline) {
        for (unsigned i = 0; i < batch; ++i)
            tram::prep_nop(*ring.get_sqe());
        if (const int r = ring.submit_and_wait(batch); r < 0) {
            tram::throw_error(-r, "io_uring_enter", "submitting NOPs failed");
        }
        for (const tram::completion& c : ring.completions()) {
            if (!c.ok()) tram::throw_error(c.error(), "IORING_OP_NOP");
            ++done;
        }
        now = clock::now();
    }
    const double elapsed = std::chrono::duration<double>(now - start).count();
    std::printf("NOP throughput, batch %u: %.2fM NOPs/s, %.1f ns per NOP (%llu NOPs in %.2f s)\n",
                batch, static_cast<double>(done) / elapsed / 1e6, elapsed * 1e9 / done,
                static_cast<unsigned long long>(done), elapsed);
}

} // namespace

int main(int argc, char* argv[]) try {
    const options opt = parse_options(argc, argv);

    utsname uts{};
    ::uname(&uts);
    std::printf("kernel: %s %s\n", uts.sysname, uts.release);

    tram::ring_options ring_opts;
    ring_opts.entries = 256;
    while (ring_opts.entries < opt.batch)
        ring_opts.entries <<= 1;
    tram::ring ring(ring_opts);
    std::printf("ring: %u SQ entries, %u CQ entries, registered ring fd: %s\n",
                ring.sq().capacity(), ring.cq().capacity(),
                ring.registered_index() ? "yes" : "no (kernel before 5.18)");
    std::printf("features: %s\n", tram::to_string(ring.features()).c_str());
    print_setup_flags();
    print_ops(tram::probe(ring));
    std::printf("\n");
    run_nops(ring, opt.batch, opt.seconds);
    return 0;
} catch (const tram::error& e) {
    std::fprintf(stderr, "ring_demo: %s\n", e.what());
    return 1;
}
