// Tests of examples/ring_demo/ring_demo.cpp: the built program, run as a child process. Its
// path comes from the RING_DEMO_EXE variable.
#include "child_process.hpp"

#include <tram/probe.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

tram::test::child_outcome run_demo(const std::vector<std::string>& args) {
    std::vector<std::string> argv{tram::test::path_from_env("RING_DEMO_EXE")};
    argv.insert(argv.end(), args.begin(), args.end());
    tram::test::child_outcome r = tram::test::run_child(argv);
    REQUIRE_FALSE(r.timed_out);
    return r;
}

} // namespace

TEST_CASE("ring_demo prints the kernel's setup flags and ops as the probe sees them, then NOPs/s") {
    const auto r = run_demo({"--batch", "8", "--seconds", "0.1"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    using Catch::Matchers::Contains;
    CHECK_THAT(r.out, Contains("setup flags accepted:"));
    CHECK_THAT(r.out, Contains("NOP throughput, batch 8:"));
    // The ops it lists as supported are the ones the probe reports.
    const tram::probe kernel = tram::probe::of_kernel();
    for (const tram::opcode op : kernel.supported())
        CHECK_THAT(r.out, Contains(std::string(tram::to_string(op))));
}

TEST_CASE("ring_demo explains its options and refuses bad ones") {
    const auto help = run_demo({"--help"});
    CHECK(help.status == 0);
    CHECK_THAT(help.out, Catch::Matchers::Contains("--batch N"));
    const auto bad = run_demo({"--batch", "0"});
    CHECK(bad.status == 2);
    CHECK_THAT(bad.err, Catch::Matchers::Contains("--batch must be 1..4096"));
    const auto unknown = run_demo({"--frobnicate"});
    CHECK(unknown.status != 0);
    CHECK_THAT(unknown.err, Catch::Matchers::Contains("bad argument '--frobnicate'"));
}
