// Bounded waiting for completions, so that no test can hang on a completion that never comes.
#pragma once

#include <tram/ring.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace tram::test {

using namespace std::chrono_literals;

/// Submits what is prepared, then collects exactly `count` completions (in CQ order), waiting
/// at most `timeout` in all. Fails the test (REQUIRE) when they do not arrive in time.
std::vector<completion> reap(ring& r, unsigned count, std::chrono::nanoseconds timeout = 5s);

/// Submits, reaps one completion and checks its user_data.
completion reap_one(ring& r, std::chrono::nanoseconds timeout = 5s);

/// Whatever completions arrive within `window` (for checking that nothing more comes).
std::vector<completion> reap_for(ring& r, std::chrono::nanoseconds window);

/// Takes a free SQE; fails the test when the SQ is full.
io_uring_sqe& sqe_of(ring& r);

} // namespace tram::test
