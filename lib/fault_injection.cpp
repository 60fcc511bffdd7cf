#include "fault_injection.hpp"

#include <algorithm>

namespace tram::testing {
namespace {

// A fault that fires on every `every`-th eligible call, `left` more times.
struct periodic_fault {
    unsigned left = 0;
    unsigned every = 1;
    unsigned seen = 0;

    void arm(unsigned times, unsigned period) noexcept {
        left = times;
        every = std::max(period, 1U);
        seen = 0;
    }
    bool fires() noexcept {
        if (left == 0 || ++seen % every != 0) return false;
        --left;
        return true;
    }
};

struct fault_plan {
    int enter_errnum = 0;
    periodic_fault enter_failure;
    unsigned max_submit = 1;
    periodic_fault short_submit;
    int setup_errnum = 0;
    periodic_fault setup_failure;
    fault_counters counters;
};

// Per thread: tests that run a driver on another thread arm that thread's faults, and no
// test's faults leak into rings driven elsewhere.
thread_local fault_plan plan;

} // namespace

void fail_enters(int errnum, unsigned times, unsigned every) noexcept {
    plan.enter_errnum = errnum;
    plan.enter_failure.arm(times, every);
}

void short_submits(unsigned max_submit, unsigned times, unsigned every) noexcept {
    plan.max_submit = std::max(max_submit, 1U); // submitting none could leave a wait hanging
    plan.short_submit.arm(times, every);
}

void fail_setups(int errnum, unsigned times) noexcept {
    plan.setup_errnum = errnum;
    plan.setup_failure.arm(times, 1);
}

void reset_faults() noexcept { plan = fault_plan{}; }

fault_counters faults_seen() noexcept { return plan.counters; }

namespace detail {

enter_fault before_enter(unsigned to_submit) noexcept {
    ++plan.counters.enters;
    if (plan.enter_failure.fires()) {
        ++plan.counters.enter_failures;
        return {plan.enter_errnum, to_submit};
    }
    if (to_submit > plan.max_submit && plan.short_submit.fires()) {
        ++plan.counters.short_submits;
        return {0, plan.max_submit};
    }
    return {0, to_submit};
}

int before_setup() noexcept {
    ++plan.counters.setups;
    if (plan.setup_failure.fires()) {
        ++plan.counters.setup_failures;
        return plan.setup_errnum;
    }
    return 0;
}

} // namespace detail
} // namespace tram::testing
