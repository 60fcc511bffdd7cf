#include "skip.hpp"

#include <tram/probe.hpp>

#include <catch2/catch.hpp>

#include <iostream>
#include <set>

namespace tram::test {
namespace {

std::set<std::string>& skipped() {
    static std::set<std::string> names;
    return names;
}

} // namespace

void skip(const std::string& reason) {
    const std::string name = Catch::getResultCapture().getCurrentTestName();
    skipped().insert(name);
    std::cout << "SKIPPED: " << name << ": " << reason << '\n';
}

bool lacks(opcode op) {
    static const probe kernel = probe::of_kernel();
    if (kernel.supports(op)) return false;
    skip(unsupported_op_message(op));
    return true;
}

int skipped_count() noexcept { return static_cast<int>(skipped().size()); }

} // namespace tram::test
