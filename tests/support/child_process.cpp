#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace tram::test {

child_outcome run_child(const std::vector<std::string>& args, int stdout_fd,
                        std::chrono::seconds limit) {
    REQUIRE_FALSE(args.empty());
    int out_pipe[2];
    int err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<char*> argv;
    for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(stdout_fd >= 0 ? stdout_fd : out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    // Both pipes are drained as the child writes, so that it never blocks on a full one.
    child_outcome result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int open_pipes = 2;
    char buf[65536];
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

std::string path_from_env(const char* name) {
    const char* path = std::getenv(name);
    if (path == nullptr) {
        throw std::runtime_error(std::string(name) + " is not set (run through meson test)");
    }
    return path;
}

std::vector<long> connections_per_worker(const std::string& output) {
    const std::string prefix = "connections per worker:";
    const std::size_t at = output.find(prefix);
    INFO("the server's stdout: " << output);
    REQUIRE(at != std::string::npos);
    std::vector<long> counts;
    const char* p = output.c_str() + at + prefix.size();
    while (*p == ' ') {
        char* end = nullptr;
        counts.push_back(std::strtol(p, &end, 10));
        p = end;
    }
    return counts;
}

} // namespace tram::test
