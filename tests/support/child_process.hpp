// Running a built program as a child process, the way a user runs it, with bounded time.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace tram::test {

/// What a child process did.
struct child_outcome {
    int status = -1; ///< exit status, or 128 + the signal that ended it
    std::string out; ///< stdout, when it went into a pipe
    std::string err; ///< stderr
    bool timed_out = false;
};

/// Runs `args` (`args[0]` is looked up in PATH when it has no slash), reading its stdout and
/// stderr while it runs; with `stdout_fd` >= 0, stdout goes there instead. Past `limit` the
/// child is killed and `timed_out` set: the caller decides whether that fails the test.
[[nodiscard]] child_outcome run_child(const std::vector<std::string>& args, int stdout_fd = -1,
                                      std::chrono::seconds limit = std::chrono::seconds(30));

/// The counts of the "connections per worker: N M ..." line that the example servers print at
/// exit, in `output` (their stdout); fails the test when there is no such line.
[[nodiscard]] std::vector<long> connections_per_worker(const std::string& output);

/// The value of environment variable `name`, which meson test sets (a built program's path);
/// throws when it is missing.
[[nodiscard]] std::string path_from_env(const char* name);

} // namespace tram::test
