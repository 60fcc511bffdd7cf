// Tests of examples/libuv_embed/libuv_embed.cpp: the built program, run as a child process
// (path in LIBUV_EMBED_EXE), must show libuv's timer and tram's coroutines progressing
// together on one thread, and end cleanly within a bounded time.
#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using outcome = tram::test::child_outcome;

/// Runs the example with `args`, reading its stdout and stderr; kills it after `limit`.
outcome run_example(const std::vector<std::string>& args, std::chrono::seconds limit) {
    std::vector<std::string> argv{tram::test::path_from_env("LIBUV_EMBED_EXE")};
    argv.insert(argv.end(), args.begin(), args.end());
    return tram::test::run_child(argv, -1, limit);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("libuv timers and tram coroutines both progress on one thread, then all ends cleanly") {
    const outcome r = run_example({}, std::chrono::seconds(20));
    INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.err.empty());

    // Positions of each kind of event in the output, which is in the order they happened.
    std::vector<std::size_t> uv_ticks;
    std::vector<std::size_t> tram_ticks;
    std::vector<std::size_t> echoes;
    const std::vector<std::string> lines = lines_of(r.out);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (contains(lines[i], "libuv timer tick")) uv_ticks.push_back(i);
        if (contains(lines[i], "tram timer tick")) tram_ticks.push_back(i);
        if (contains(lines[i], "tram echo:")) echoes.push_back(i);
    }
    CHECK(uv_ticks.size() == 10);
    CHECK(tram_ticks.size() == 10);
    CHECK(echoes.size() == 4);
    REQUIRE_FALSE(uv_ticks.empty());
    REQUIRE_FALSE(tram_ticks.empty());
    REQUIRE_FALSE(echoes.empty());
    // Interleaved: each side made progress while the other was still going.
    CHECK(tram_ticks.front() < uv_ticks.back());
    CHECK(uv_ticks.front() < tram_ticks.back());
    CHECK(echoes.front() < uv_ticks.back());
    REQUIRE_FALSE(lines.empty());
    CHECK(contains(lines.back(), "done: libuv ticks 10, tram ticks 10, echoed 100 messages"));
    CHECK(contains(lines.back(), "driver idle"));
}

TEST_CASE("libuv_embed's ring fd wakes libuv when only a tram timer is pending") {
    // The last tram sleep runs after libuv's timer has stopped: libuv sleeps in epoll_wait with
    // no timeout, and only the ring fd can wake it. A missed wake-up would hang (caught by the
    // time limit above); a late one shows here. Generous: the machine is shared and noisy.
    const outcome r = run_example({}, std::chrono::seconds(20));
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.status == 0);
    const std::size_t at = r.out.find("lone sleep ");
    REQUIRE(at != std::string::npos);
    const double late_ms = std::stod(r.out.substr(at + std::string("lone sleep ").size()));
    CHECK(late_ms >= 0);
    CHECK(late_ms < 500);
}

TEST_CASE("libuv_embed --help exits 0, and an unknown argument exits 2") {
    const outcome help = run_example({"--help"}, std::chrono::seconds(10));
    CHECK(help.status == 0);
    CHECK(contains(help.out, "Usage: libuv_embed"));
    const outcome wrong = run_example({"--nope"}, std::chrono::seconds(10));
    CHECK(wrong.status == 2);
    CHECK(contains(wrong.err, "Usage: libuv_embed"));
}
