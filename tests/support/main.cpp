// The test runner: Catch2's, plus exit code 77 ("skipped" for meson) when tests were skipped
// for a missing kernel feature and none failed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "skip.hpp"

#include <csignal>
#include <iostream>

int main(int argc, char* argv[]) {
    // Writes to a socket whose peer is gone must fail with EPIPE, not kill the test.
    std::signal(SIGPIPE, SIG_IGN);
    const int failed = Catch::Session().run(argc, argv);
    if (failed != 0) return failed;
    if (const int skipped = tram::test::skipped_count(); skipped > 0) {
        std::cout << skipped << " test case(s) skipped for a missing kernel feature\n";
        return 77;
    }
    return 0;
}
