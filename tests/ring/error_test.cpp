// Tests of lib/error.cpp: errno names and the "operation: detail (ENAME)" message format.
#include <tram/error.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <system_error>

using namespace tram;

TEST_CASE("errno_name gives the symbolic name of an errno") {
    CHECK(errno_name(EPERM) == "EPERM");
    CHECK(errno_name(ENOSYS) == "ENOSYS");
    CHECK(errno_name(ENOMEM) == "ENOMEM");
    CHECK(errno_name(EINVAL) == "EINVAL");
    CHECK(errno_name(ECONNREFUSED) == "ECONNREFUSED");
    CHECK(errno_name(ECANCELED) == "ECANCELED");
    CHECK(errno_name(ETIME) == "ETIME");
    CHECK(errno_name(ENOBUFS) == "ENOBUFS");
    CHECK(errno_name(EBADFD) == "EBADFD"); // a disabled ring's answer
    CHECK(errno_name(EAGAIN) == errno_name(EWOULDBLOCK));
}

TEST_CASE("errno_name says E? for a number it has no name for") {
    CHECK(errno_name(0) == "E?");
    CHECK(errno_name(9999) == "E?");
    CHECK(errno_name(-EINVAL) == "E?");
}

TEST_CASE("describe_error without detail uses the strerror text") {
    CHECK(describe_error(ENOENT, "openat") ==
          std::string("openat: ") + std::strerror(ENOENT) + " (ENOENT)");
}

TEST_CASE("describe_error with detail names the operation, the detail and the errno") {
    CHECK(describe_error(EPERM, "io_uring_setup", "disabled by the sysctl") ==
          "io_uring_setup: disabled by the sysctl (EPERM)");
}

TEST_CASE("throw_error throws a tram::error carrying the errno and the message") {
    try {
        throw_error(ENOMEM, "io_uring_register", "registering buffers");
        FAIL("nothing thrown");
    } catch (const tram::error& e) {
        CHECK(e.errnum() == ENOMEM);
        CHECK(e.code() == std::error_code(ENOMEM, std::system_category()));
        CHECK(std::string(e.what()).find("io_uring_register: registering buffers (ENOMEM)") !=
              std::string::npos);
    }
}

TEST_CASE("a tram::error can be caught as a std::system_error") {
    CHECK_THROWS_AS(throw_error(EBADF, "close"), std::system_error);
}

TEST_CASE("an error's message is exactly the description, without strerror appended again") {
    try {
        throw_error(ECONNREFUSED, "connect 127.0.0.1:9");
    } catch (const error& e) {
        CHECK(std::string(e.what()) == "connect 127.0.0.1:9: Connection refused (ECONNREFUSED)");
        CHECK(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
        const error copy = e; // exceptions are copied when thrown and caught by value
        CHECK(std::string(copy.what()) == e.what());
    }
}
