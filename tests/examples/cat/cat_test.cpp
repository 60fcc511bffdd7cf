// Tests of examples/cat/cat.cpp: the built program, run as a child process on real files, its
// output going into a pipe or a file. The program's path comes from the CAT_EXE variable.
#include "child_process.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
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

using outcome = tram::test::child_outcome;

/// Runs cat with `args`; its stdout goes into `stdout_fd` if given, else into a pipe that is
/// read while it runs. Killed, and the test failed, if it runs longer than 30 s.
outcome run_cat(const std::vector<std::string>& args, int stdout_fd = -1) {
    std::vector<std::string> argv{tram::test::path_from_env("CAT_EXE")};
    argv.insert(argv.end(), args.begin(), args.end());
    outcome r = tram::test::run_child(argv, stdout_fd);
    REQUIRE_FALSE(r.timed_out);
    return r;
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
