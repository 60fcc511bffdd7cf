// Tests of examples/cat/cat.cpp: the built program, run as a child process on real files, its
// output going into a pipe or a file. The program's path comes from the CAT_EXE variable.
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// `size` bytes that differ from one offset to the next, so that a misplaced byte shows.
std::string pattern(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>((i * 131 + i / 251 + seed) & 0xff);
    return s;
}

std::string cat_exe() {
    const char* path = std::getenv("CAT_EXE");
    if (path == nullptr) throw std::runtime_error("CAT_EXE is not set (run through meson test)");
    return path;
}

struct outcome {
    int status = -1; ///< exit status, or 128 + signal
    std::string out; ///< stdout, when it went into a pipe
    std::string err;
};

/// Runs cat with `args`; its stdout goes into `stdout_fd` if given, else into a pipe that is
/// read while it runs. Killed, and the test failed, if it runs longer than 30 s.
outcome run_cat(const std::vector<std::string>& args, int stdout_fd = -1) {
    int out_pipe[2];
    int err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    const std::string exe = cat_exe();
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(stdout_fd >= 0 ? stdout_fd : out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    outcome result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int open_pipes = 2;
    char buf[65536];
    while (open_pipes > 0 && std::chrono::steady_clock::now() < deadline) {
        if (::poll(fds, 2, 1000) < 0) continue;
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
    const bool timed_out = open_pipes > 0;
    if (timed_out) ::kill(pid, SIGKILL);
    for (pollfd& p : fds)
        if (p.fd >= 0) ::close(p.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE_FALSE(timed_out);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

struct inputs {
    tram::test::temp_dir dir;
    std::vector<std::string> paths;
    std::string expected;

    inputs() {
        add("small", "hello, cat\n");
        add("empty", "");
        add("large", pattern(5 * 1024 * 1024 + 12345, 1)); // several chunks, a partial last
        add("exact", pattern(128 * 1024, 2));              // one chunk exactly
        add("tail", pattern(4097, 3));
    }
    void add(const std::string& name, const std::string& contents) {
        paths.push_back(dir.write_file(name, contents));
        expected += contents;
    }
};

} // namespace

TEST_CASE("cat concatenates files byte for byte into a pipe") {
    inputs in;
    const outcome r = run_cat(in.paths);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    REQUIRE(r.out.size() == in.expected.size());
    CHECK(r.out == in.expected);
}

TEST_CASE("cat concatenates files byte for byte into a file") {
    inputs in;
    const std::string out_path = in.dir / "out";
    const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    const outcome r = run_cat(in.paths, fd);
    ::close(fd);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    const std::string written = in.dir.read_file("out");
    REQUIRE(written.size() == in.expected.size());
    CHECK(written == in.expected);
}

TEST_CASE("cat reports a missing file by name, prints the others and exits non-zero") {
    inputs in;
    const std::string missing = in.dir / "missing";
    std::vector<std::string> args = in.paths;
    args.insert(args.begin() + 1, missing);
    const outcome r = run_cat(args);
    CHECK(r.status == 1);
    CHECK(r.err == "cat: open " + missing + ": No such file or directory (ENOENT)\n");
    CHECK(r.out == in.expected);
}

TEST_CASE("cat reports a directory it cannot read and goes on") {
    inputs in;
    const outcome r = run_cat({in.dir.path(), in.paths[0]});
    CHECK(r.status == 1);
    CHECK(r.err == "cat: read " + in.dir.path() + ": Is a directory (EISDIR)\n");
    CHECK(r.out == "hello, cat\n");
}

TEST_CASE("cat reads standard input for a dash") {
    inputs in;
    const std::string input = pattern(300 * 1024, 4);
    const std::string input_path = in.dir.write_file("stdin", input);
    // The child inherits stdin; a file there makes the test independent of the runner's.
    const int saved = ::dup(STDIN_FILENO);
    const int fd = ::open(input_path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ::dup2(fd, STDIN_FILENO);
    const outcome r = run_cat({in.paths[0], "-", in.paths[0]});
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    ::close(fd);
    CHECK(r.status == 0);
    CHECK(r.out == "hello, cat\n" + input + "hello, cat\n");
}

TEST_CASE("cat --help prints its usage and exits 0") {
    const outcome r = run_cat({"--help"});
    CHECK(r.status == 0);
    CHECK(r.out.find("Usage: cat") == 0);
    CHECK(r.err.empty());
}

TEST_CASE("cat refuses an unknown option") {
    const outcome r = run_cat({"-z"});
    CHECK(r.status == 2);
    CHECK(r.err.find("cat: unknown option -z") == 0);
}
