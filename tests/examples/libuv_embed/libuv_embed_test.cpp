// Tests of examples/libuv_embed/libuv_embed.cpp: the built program, run as a child process
// (path in LIBUV_EMBED_EXE), must show libuv's timer and tram's coroutines progressing
// together on one thread, and end cleanly within a bounded time.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct outcome {
    int status = -1; ///< exit status, or 128 + signal
    std::string out;
    std::string err;
    bool timed_out = false;
};

/// Runs the example with `args`, reading its stdout and stderr; kills it after `limit`.
outcome run_example(const std::vector<std::string>& args, std::chrono::seconds limit) {
    const char* exe = std::getenv("LIBUV_EMBED_EXE");
    if (exe == nullptr) throw std::runtime_error("LIBUV_EMBED_EXE is not set (run through meson)");
    int out_pipe[2];
    int err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<char*> argv{const_cast<char*>(exe)};
    for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    outcome result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int open_pipes = 2;
    char buf[4096];
    while (open_pipes > 0 && std::chrono::steady_clock::now() < deadline) {
        if (::poll(fds, 2, 100) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
    result.timed_out = open_pipes > 0;
    if (result.timed_out) ::kill(pid, SIGKILL);
    for (pollfd& p : fds)
        if (p.fd >= 0) ::close(p.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
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
