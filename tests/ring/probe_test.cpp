// Tests of lib/probe.cpp and lib/opcode.cpp: the probe agrees with what the kernel runs, and
// every op has a name and a first kernel version.
#include <tram/probe.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace tram;

TEST_CASE("the probe reports the ops every io_uring kernel has") {
    ring r;
    const probe p(r);
    for (opcode op : {opcode::nop, opcode::readv, opcode::writev, opcode::read, opcode::write,
                      opcode::timeout, opcode::accept, opcode::send, opcode::recv}) {
        INFO(to_string(op));
        CHECK(p.supports(op));
    }
    CHECK(p.last_op() >= static_cast<unsigned>(opcode::sendmsg_zc));
}

TEST_CASE("the probe of a small ring of its own agrees with a probe through a ring") {
    ring r;
    const probe through(r);
    const probe own = probe::of_kernel();
    CHECK(own.last_op() == through.last_op());
    CHECK(own.supported() == through.supported());
}

TEST_CASE("supported lists the named ops the kernel has, in numeric order") {
    const probe p = probe::of_kernel();
    const auto ops = p.supported();
    REQUIRE_FALSE(ops.empty());
    CHECK(ops.front() == opcode::nop);
    for (std::size_t i = 1; i < ops.size(); ++i) {
        CHECK(static_cast<unsigned>(ops[i - 1]) < static_cast<unsigned>(ops[i]));
    }
    for (opcode op : ops)
        CHECK(static_cast<unsigned>(op) < opcode_count);
}

TEST_CASE("an op the probe reports as supported runs, and one it does not is refused") {
    ring r;
    const probe p(r);
    REQUIRE(p.supports(opcode::nop));
    io_uring_sqe& nop = test::sqe_of(r);
    prep_nop(nop);
    set_user_data(nop, 1);
    CHECK(test::reap_one(r).result == 0);

    // Past the last op the kernel knows: not supported, and an SQE with it fails with EINVAL.
    const unsigned beyond = p.last_op() + 1;
    REQUIRE(beyond < 256);
    CHECK_FALSE(p.supports(static_cast<opcode>(beyond)));
    io_uring_sqe& bad = test::sqe_of(r);
    prep_nop(bad);
    bad.opcode = static_cast<std::uint8_t>(beyond);
    set_user_data(bad, 2);
    CHECK(test::reap_one(r).result == -EINVAL);
}

TEST_CASE("the probe agrees with tram::test::lacks about the ops this kernel has") {
    const probe p = probe::of_kernel();
    for (opcode op :
         {opcode::nop, opcode::read, opcode::openat, opcode::msg_ring, opcode::socket}) {
        INFO(to_string(op));
        REQUIRE(p.supports(op));
        CHECK_FALSE(test::lacks(op)); // a supported op never marks the test skipped
    }
    CHECK(test::skipped_count() == 0);
}

TEST_CASE("every op tram knows has a unique name and a first kernel version") {
    std::set<std::string_view> names;
    for (unsigned i = 0; i < opcode_count; ++i) {
        const auto op = static_cast<opcode>(i);
        INFO("op " << i);
        CHECK(to_string(op) != "unknown");
        CHECK(names.insert(to_string(op)).second);
        CHECK(first_kernel_with(op) != "?");
    }
    CHECK(to_string(opcode::read_fixed) == "read_fixed");
    CHECK(to_string(opcode::pipe) == "pipe");
    CHECK(first_kernel_with(opcode::bind) == "6.11");
}

TEST_CASE("an op number tram has no name for is called unknown") {
    CHECK(to_string(static_cast<opcode>(opcode_count)) == "unknown");
    CHECK(to_string(static_cast<opcode>(250)) == "unknown");
    CHECK(first_kernel_with(static_cast<opcode>(250)) == "?");
}

TEST_CASE("the message for a missing op names it and the kernel that has it") {
    CHECK(unsupported_op_message(opcode::bind) ==
          "IORING_OP_BIND is not supported by this kernel (it needs Linux 6.11 or later)");
    CHECK(unsupported_op_message(opcode::read_multishot) ==
          "IORING_OP_READ_MULTISHOT is not supported by this kernel (it needs Linux 6.7 or "
          "later)");
}
