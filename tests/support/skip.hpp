// Skipping tests whose kernel feature is missing, so that they are reported as skipped (exit
// code 77 under `meson test`), never as passed.
#pragma once

#include <tram/opcode.hpp>

#include <string>

namespace tram::test {

/// Records that the current test case is skipped, and why.
void skip(const std::string& reason);

/// True (and the current test recorded as skipped) when the running kernel lacks `op`:
/// `if (test::lacks(opcode::bind)) return;`
[[nodiscard]] bool lacks(opcode op);

/// How many test cases were skipped in this run.
[[nodiscard]] int skipped_count() noexcept;

} // namespace tram::test
