// Cross-thread wake-up latency of tram's worker pool: a task hops between two workers with
// `switch_to`, and each hop is timed (a hop = queue the coroutine on the other worker, wake
// it with IORING_OP_MSG_RING, and resume it there). Reports p50/p99 per hop, with the workers
// on separate CPUs when there are two, and the CPU time the pool burns while idle.
#include <tram/runtime.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

tram::task<std::vector<double>> hop(tram::worker_pool& pool, int hops) {
    std::vector<double> ns;
    ns.reserve(static_cast<std::size_t>(hops));
    for (int i = 0; i < hops; ++i) {
        const auto start = clock_type::now();
        co_await pool.switch_to(static_cast<std::size_t>(i + 1) % 2);
        ns.push_back(std::chrono::duration<double, std::nano>(clock_type::now() - start).count());
    }
    co_return ns;
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char* argv[]) {
    int hops = 20'000;
    std::optional<std::string> csv;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help") {
            std::printf("Usage: %s [--hops N] [--csv FILE]\n"
                        "Cross-thread wake-up latency between two tram workers.\n",
                        argv[0]);
            return 0;
        }
        if (arg == "--hops" && i + 1 < argc) {
            hops = std::stoi(argv[++i]);
        } else if (arg == "--csv" && i + 1 < argc) {
            csv = argv[++i];
        } else {
            std::fprintf(stderr, "wake_bench: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    tram::worker_pool pool(tram::worker_pool_options{.threads = 2, .pin = true});
    pool.block_on(0, hop(pool, 1000)); // warm-up
    const std::vector<double> ns = pool.block_on(0, hop(pool, hops));
    const double p50 = percentile(ns, 0.50) / 1000;
    const double p99 = percentile(ns, 0.99) / 1000;

    const double idle_start = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double idle_cpu_ms = (cpu_seconds() - idle_start) * 1000;

    std::printf("cross-thread wake-up (switch_to between 2 pinned workers, %d hops)\n", hops);
    std::printf("  p50 %.1f us   p99 %.1f us   idle pool CPU %.1f ms per 500 ms\n", p50, p99,
                idle_cpu_ms);
    if (csv) {
        std::ofstream out(*csv, std::ios::app);
        out << "wakeup,switch_to,tram,p50_us," << p50 << '\n'
            << "wakeup,switch_to,tram,p99_us," << p99 << '\n';
    }
    return 0;
}
