// The cost of `co_await nop()` through the driver, against the same NOPs through the raw ring
// layer, in the same process and with the same ring setup. A batch of N is N coroutines, each
// awaiting NOPs in a loop: every loop turn resumes all N, which prepare N SQEs, which one
// io_uring_enter submits (and waits for). The raw ring does the same with a plain loop:
// prepare N NOPs, submit_and_wait(N), consume N completions.
//
// Output: ns per NOP for both, the ratio driver/raw (the driver's overhead), and the driver's
// io_uring_enter calls per NOP (from driver::stats). Medians of alternating runs.
#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    std::vector<unsigned> batches{1, 8, 32, 128};
    unsigned runs = 9;
    std::uint64_t ops_per_run = 400'000;
    std::optional<std::string> csv;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "await_bench: %s (see --help)\n", message.c_str());
    std::exit(2);
}

options parse_options(int argc, char* argv[]) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--help") {
            std::printf("Usage: %s [--batch 1,8,32,128] [--runs N] [--ops N] [--csv FILE]\n"
                        "co_await nop() through tram's driver against the raw ring layer.\n",
                        argv[0]);
            std::exit(0);
        } else if (arg == "--batch") {
            opt.batches.clear();
            const std::string list = value();
            for (std::size_t pos = 0; pos <= list.size();) {
                const std::size_t comma = std::min(list.find(',', pos), list.size());
                opt.batches.push_back(static_cast<unsigned>(std::stoul(list.substr(pos, comma - pos))));
                pos = comma + 1;
            }
        } else if (arg == "--runs") {
            opt.runs = static_cast<unsigned>(std::stoul(value()));
        } else if (arg == "--ops") {
            opt.ops_per_run = std::stoull(value());
        } else if (arg == "--csv") {
            opt.csv = value();
        } else {
            usage_error("unknown option " + std::string(arg));
        }
    }
    if (opt.runs == 0 || opt.ops_per_run == 0) usage_error("--runs and --ops must be positive");
    return opt;
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

struct driver_sample {
    double ns_per_op;
    double enters_per_op;
};

tram::task<> nop_loop(std::uint64_t& remaining) {
    while (remaining > 0) {
        --remaining;
        const tram::io_result r = co_await tram::nop();
        if (!r) throw std::runtime_error("nop failed: " + r.error_code().message());
    }
}

driver_sample run_driver(tram::driver& d, unsigned batch, std::uint64_t ops) {
    std::uint64_t remaining = ops;
    std::vector<tram::task<>> loops;
    loops.reserve(batch);
    for (unsigned i = 0; i < batch; ++i) loops.push_back(nop_loop(remaining));
    const tram::driver_stats before = d.stats();
    const auto start = clock_type::now();
    tram::run(d, tram::when_all(std::move(loops)));
    const double elapsed = seconds_since(start);
    const auto enters = d.stats().enters - before.enters;
    return {elapsed * 1e9 / static_cast<double>(ops),
            static_cast<double>(enters) / static_cast<double>(ops)};
}

double run_raw(tram::ring& r, unsigned batch, std::uint64_t ops) {
    const auto start = clock_type::now();
    for (std::uint64_t done = 0; done < ops; done += batch) {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = r.get_sqe();
            tram::prep_nop(*sqe);
            tram::set_user_data(*sqe, i + 1);
        }
        if (const int res = r.submit_and_wait(batch); res < 0) {
            throw std::runtime_error(tram::describe_error(-res, "io_uring_enter"));
        }
        unsigned seen = 0;
        for (const tram::completion& c : r.completions()) seen += c.result == 0 ? 1 : 0;
        if (seen != batch) throw std::runtime_error("raw ring: lost a NOP completion");
    }
    return seconds_since(start) * 1e9 / static_cast<double>(ops);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char* argv[]) try {
    const options opt = parse_options(argc, argv);
    const unsigned max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());
    tram::driver d(tram::driver_options{.entries = std::max(256U, max_batch * 2)});
    // The raw ring gets the flags the driver chose, so both pay the same kernel costs.
    tram::ring_options ro;
    ro.entries = std::max(256U, max_batch * 2);
    ro.flags = d.ring().flags();
    ro.flags.remove(tram::setup_flag::cqsize); // set again from cq_entries
    ro.cq_entries = d.ring().cq().capacity();
    tram::ring raw(ro);

    std::ofstream csv;
    if (opt.csv) {
        csv.open(*opt.csv, std::ios::app);
        if (!csv) usage_error("cannot write " + *opt.csv);
    }
    std::printf("co_await nop() through the driver vs the raw ring (setup: %s)\n",
                tram::to_string(d.ring().flags()).c_str());
    std::printf("%6s  %12s  %14s  %8s  %12s\n", "batch", "raw ns/NOP", "driver ns/NOP",
                "ratio", "enters/NOP");
    for (const unsigned batch : opt.batches) {
        const std::uint64_t ops = std::max<std::uint64_t>(opt.ops_per_run / batch * batch, batch);
        run_raw(raw, batch, ops / 10 + batch); // warm-up: page faults, frame pool
        run_driver(d, batch, ops / 10 + batch);
        std::vector<double> raw_ns, driver_ns, enters;
        for (unsigned i = 0; i < opt.runs; ++i) {
            raw_ns.push_back(run_raw(raw, batch, ops));
            const driver_sample s = run_driver(d, batch, ops);
            driver_ns.push_back(s.ns_per_op);
            enters.push_back(s.enters_per_op);
        }
        const double raw_med = median(raw_ns);
        const double drv_med = median(driver_ns);
        const double enters_med = median(enters);
        std::printf("%6u  %12.1f  %14.1f  %7.2fx  %12.4f\n", batch, raw_med, drv_med,
                    drv_med / raw_med, enters_med);
        if (csv) {
            // co_await through the driver stands in the NOP table next to nop_bench's rows
            // (tram's ring layer and liburing at the same batch sizes); its cost over the raw
            // ring is a workload of its own.
            const std::string nop = "nop,batch=" + std::to_string(batch) + ",tram-co_await,";
            csv << nop << "ops_per_s," << 1e9 / drv_med << '\n'
                << nop << "ns_per_op," << drv_med << '\n'
                << nop << "syscalls_per_op," << enters_med << '\n';
            const std::string overhead = "await_overhead,batch=" + std::to_string(batch);
            csv << overhead << ",raw_ring,ns_per_op," << raw_med << '\n'
                << overhead << ",driver,ns_per_op," << drv_med << '\n'
                << overhead << ",driver,ratio_vs_raw," << drv_med / raw_med << '\n';
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "await_bench: %s\n", e.what());
    return 1;
}
