// Tests of lib/registrar.cpp: registered buffers and files used through their typed handles
// (the SQE picks the fixed op, index and flag by itself) for real I/O, sparse tables and
// updates, eventfds, personalities, io-wq limits, and the documented registration errors.
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "sockets.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test::sqe_of;

namespace {

ring_options small() {
    ring_options o;
    o.entries = 16;
    return o;
}

std::string text(std::span<const std::byte> b, std::size_t n) {
    return {reinterpret_cast<const char*>(b.data()), n};
}

template <typename Prep>
completion run_one(ring& r, Prep&& prep, std::uint64_t user_data = 1) {
    io_uring_sqe& sqe = sqe_of(r);
    prep(sqe);
    set_user_data(sqe, user_data);
    const completion c = test::reap_one(r);
    CHECK(c.user_data == user_data);
    return c;
}

template <typename F>
tram::error error_from(F&& f) {
    try {
        f();
    } catch (const tram::error& e) {
        return e;
    }
    FAIL("no tram::error was thrown");
    return tram::error(0, "unreachable");
}

// Page-aligned memory for registered buffers.
struct page_buffer {
    explicit page_buffer(std::size_t size)
        : bytes(size + 4096) {}
    std::span<std::byte> span(std::size_t size) {
        auto addr = reinterpret_cast<std::uintptr_t>(bytes.data());
        return {bytes.data() + ((4096 - addr % 4096) % 4096), size};
    }
    std::vector<std::byte> bytes;
};

iovec iov_of(std::span<std::byte> s) { return {s.data(), s.size()}; }

} // namespace

// ---- Buffers ------------------------------------------------------------------------------------

TEST_CASE(
    "a registered buffer handle makes reads and writes READ_FIXED/WRITE_FIXED with its index") {
    ring r(small());
    registrar reg(r);
    page_buffer mem(2 * 4096);
    const auto span = mem.span(2 * 4096);
    const iovec iovs[] = {iov_of(span.first(4096)), iov_of(span.subspan(4096))};
    const auto handles = reg.register_buffers(iovs);
    REQUIRE(handles.size() == 2);
    CHECK(handles[1].index() == 1);
    CHECK(handles[1].data() == span.data() + 4096);
    CHECK(handles[1].size() == 4096);

    test::temp_dir dir;
    unique_fd fd(::open((dir / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    const std::string msg = "fixed buffer write";
    std::memcpy(handles[1].data(), msg.data(), msg.size());

    io_uring_sqe& w = sqe_of(r);
    prep_write(w, fd.get(), handles[1].subspan(0, msg.size()), 0);
    CHECK(w.opcode == static_cast<std::uint8_t>(opcode::write_fixed));
    CHECK(w.buf_index == 1);
    CHECK((w.flags & IOSQE_FIXED_FILE) == 0);
    set_user_data(w, 1);
    CHECK(test::reap_one(r).result == static_cast<int>(msg.size()));
    CHECK(dir.read_file("f") == msg);

    // Read back into the middle of buffer 0: subspan keeps the index.
    const registered_buffer part = handles[0].subspan(100, 64);
    CHECK(part.index() == 0);
    io_uring_sqe& rd = sqe_of(r);
    prep_read(rd, fd.get(), part, 0);
    CHECK(rd.opcode == static_cast<std::uint8_t>(opcode::read_fixed));
    CHECK(rd.buf_index == 0);
    set_user_data(rd, 2);
    CHECK(test::reap_one(r).result == static_cast<int>(msg.size()));
    CHECK(text(part.memory(), msg.size()) == msg);
}

TEST_CASE("a fixed read outside its registered buffer fails with -EFAULT") {
    ring r(small());
    registrar reg(r);
    page_buffer mem(4096);
    const iovec iovs[] = {iov_of(mem.span(4096))};
    const auto handles = reg.register_buffers(iovs);
    test::temp_dir dir;
    dir.write_file("f", "data");
    unique_fd fd(::open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<std::byte> elsewhere(64);
    const registered_buffer lying(0, elsewhere); // memory that is not the registered buffer
    CHECK(run_one(r, [&](auto& s) { prep_read(s, fd.get(), lying, 0); }).result == -EFAULT);
}

TEST_CASE("a sparse buffer table is filled slot by slot with update_buffer") {
    ring r(small());
    registrar reg(r);
    reg.register_buffers_sparse(4);
    page_buffer mem(4096);
    const registered_buffer b = reg.update_buffer(2, mem.span(4096));
    CHECK(b.index() == 2);
    auto [rd, wr] = test::make_pipe();
    REQUIRE(::write(wr.get(), "sparse", 6) == 6);
    CHECK(run_one(r, [&](auto& s) { prep_read(s, rd.get(), b, current_position); }).result == 6);
    CHECK(text(b.memory(), 6) == "sparse");
    // An empty slot cannot be read into.
    REQUIRE(::write(wr.get(), "x", 1) == 1);
    const registered_buffer empty(1, b.memory());
    CHECK(run_one(r, [&](auto& s) { prep_read(s, rd.get(), empty, current_position); }).result ==
          -EFAULT);
}

TEST_CASE("registering buffers twice fails with EBUSY naming the table") {
    ring r(small());
    registrar reg(r);
    page_buffer mem(4096);
    const iovec iovs[] = {iov_of(mem.span(4096))};
    (void)reg.register_buffers(iovs);
    const tram::error e = error_from([&] { (void)reg.register_buffers(iovs); });
    CHECK(e.errnum() == EBUSY);
    CHECK_THAT(e.what(), Contains("registering buffers") && Contains("already registered") &&
                             Contains("(EBUSY)"));
    reg.unregister_buffers();
    (void)reg.register_buffers(iovs); // free again
}

TEST_CASE("registering a buffer at a bad address fails with EFAULT naming the registration") {
    ring r(small());
    registrar reg(r);
    const iovec iovs[] = {{reinterpret_cast<void*>(4096), 4096}};
    const tram::error e = error_from([&] { (void)reg.register_buffers(iovs); });
    CHECK(e.errnum() == EFAULT);
    CHECK_THAT(e.what(), Contains("io_uring_register") && Contains("registering buffers") &&
                             Contains("(EFAULT)"));
}

TEST_CASE("unregistering buffers that were never registered fails with ENXIO") {
    ring r(small());
    registrar reg(r);
    const tram::error e = error_from([&] { reg.unregister_buffers(); });
    CHECK(e.errnum() == ENXIO);
    CHECK_THAT(e.what(), Contains("unregistering buffers"));
}

namespace {

// In a child: drops CAP_IPC_LOCK (which exempts root from the limit), lowers RLIMIT_MEMLOCK
// to 64 KiB, and registers 1 MiB. Exit codes: 0 as documented, 1 wrong error, 2 no error,
// 3 could not set up.
[[noreturn]] void register_beyond_memlock_in_child() {
    ::alarm(10);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) ::_exit(3);
    data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
    data[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
    if (::syscall(SYS_capset, &header, data) != 0) ::_exit(3);
    const rlimit low{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_MEMLOCK, &low) != 0) ::_exit(3);
    try {
        ring_options o;
        o.entries = 4;
        ring r(o);
        registrar reg(r);
        static std::vector<std::byte> big(1 << 20);
        const iovec iovs[] = {{big.data(), big.size()}};
        (void)reg.register_buffers(iovs);
    } catch (const tram::error& e) {
        const std::string what = e.what();
        const bool ok = e.errnum() == ENOMEM &&
                        what.find("RLIMIT_MEMLOCK is 64 KiB") != std::string::npos &&
                        what.find("registering buffers") != std::string::npos &&
                        what.find("(ENOMEM)") != std::string::npos;
        if (!ok) std::fprintf(stderr, "child got: %s\n", e.what());
        ::_exit(ok ? 0 : 1);
    } catch (...) {
        ::_exit(1);
    }
    ::_exit(2);
}

} // namespace

TEST_CASE("registering buffers beyond RLIMIT_MEMLOCK fails with ENOMEM naming the limit") {
    // The limit is lowered in a child, so this process keeps its own.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) register_beyond_memlock_in_child();
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    INFO("child exit code (0 ok, 1 wrong error, 2 no error, 3 setup): " << WEXITSTATUS(status));
    CHECK(WEXITSTATUS(status) == 0);
}

// ---- Files --------------------------------------------------------------------------------------

TEST_CASE("a registered file handle sets IOSQE_FIXED_FILE and its index, and does real I/O") {
    ring r(small());
    registrar reg(r);
    auto [rd, wr] = test::make_pipe();
    const int fds[] = {wr.get(), rd.get()};
    const auto handles = reg.register_files(fds);
    REQUIRE(handles.size() == 2);
    CHECK(handles[1] == registered_fd{1});
    // The registered slots hold their own references: closing ours does not matter.
    rd.reset();
    wr.reset();

    const std::string msg = "through the table";
    io_uring_sqe& w = sqe_of(r);
    prep_write(w, handles[0], std::as_bytes(std::span(msg)), current_position);
    CHECK((w.flags & IOSQE_FIXED_FILE) != 0);
    CHECK(w.fd == 0);
    CHECK(w.opcode == static_cast<std::uint8_t>(opcode::write));
    set_user_data(w, 1);
    CHECK(test::reap_one(r).result == static_cast<int>(msg.size()));

    std::array<std::byte, 32> buf{};
    io_uring_sqe& rs = sqe_of(r);
    prep_read(rs, handles[1], buf, current_position);
    CHECK((rs.flags & IOSQE_FIXED_FILE) != 0);
    CHECK(rs.fd == 1);
    set_user_data(rs, 2);
    CHECK(test::reap_one(r).result == static_cast<int>(msg.size()));
    CHECK(text(buf, msg.size()) == msg);
}

TEST_CASE("a registered file and a registered buffer combine in one fixed op") {
    ring r(small());
    registrar reg(r);
    test::temp_dir dir;
    dir.write_file("f", "both fixed");
    unique_fd fd(::open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC));
    const int fds[] = {fd.get()};
    const auto files = reg.register_files(fds);
    page_buffer mem(4096);
    const iovec iovs[] = {iov_of(mem.span(4096))};
    const auto bufs = reg.register_buffers(iovs);
    io_uring_sqe& s = sqe_of(r);
    prep_read(s, files[0], bufs[0], 0);
    CHECK(s.opcode == static_cast<std::uint8_t>(opcode::read_fixed));
    CHECK((s.flags & IOSQE_FIXED_FILE) != 0);
    set_user_data(s, 1);
    CHECK(test::reap_one(r).result == 10);
    CHECK(text(bufs[0].memory(), 10) == "both fixed");
}

TEST_CASE("update_files fills and empties slots of a sparse file table") {
    ring r(small());
    registrar reg(r);
    reg.register_files_sparse(4);
    auto [rd, wr] = test::make_pipe();
    const int fill[] = {wr.get()};
    reg.update_files(2, fill);
    const std::string msg = "upd";
    CHECK(run_one(r, [&](auto& s) {
              prep_write(s, registered_fd{2}, std::as_bytes(std::span(msg)), current_position);
          }).result == 3);
    const int clear[] = {-1};
    reg.update_files(2, clear);
    CHECK(run_one(r, [&](auto& s) {
              prep_write(s, registered_fd{2}, std::as_bytes(std::span(msg)), current_position);
          }).result == -EBADF);
    reg.unregister_files();
    CHECK(run_one(r, [&](auto& s) {
              prep_write(s, registered_fd{0}, std::as_bytes(std::span(msg)), current_position);
          }).result == -EBADF);
}

TEST_CASE("the file allocation range limits the slots the kernel picks") {
    ring r(small());
    registrar reg(r);
    reg.register_files_sparse(8);
    reg.set_file_alloc_range(5, 2);
    std::vector<int> got;
    for (int i = 0; i < 3; ++i) {
        got.push_back(run_one(r, [](auto& s) {
                          prep_socket_direct(s, AF_UNIX, SOCK_DGRAM, 0, alloc_file_index);
                      }).result);
    }
    CHECK(got == std::vector<int>{5, 6, -ENFILE});
}

TEST_CASE("registering files twice fails with EBUSY") {
    ring r(small());
    registrar reg(r);
    reg.register_files_sparse(2);
    const tram::error e = error_from([&] { reg.register_files_sparse(2); });
    CHECK(e.errnum() == EBUSY);
    CHECK_THAT(e.what(), Contains("sparse file table") && Contains("(EBUSY)"));
}

TEST_CASE("registering a descriptor that is not open fails with EBADF") {
    ring r(small());
    registrar reg(r);
    const int fds[] = {1'000'000};
    const tram::error e = error_from([&] { (void)reg.register_files(fds); });
    CHECK(e.errnum() == EBADF);
    CHECK_THAT(e.what(), Contains("registering files"));
}

// ---- Eventfd, personality, io-wq
// -------------------------------------------------------------------

TEST_CASE("a registered eventfd is signalled on completion, and can be turned off") {
    ring r(small());
    registrar reg(r);
    unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    REQUIRE(efd);
    reg.register_eventfd(efd.get());
    CHECK(run_one(r, [](auto& s) { prep_nop(s); }).result == 0);
    std::uint64_t count = 0;
    CHECK(::read(efd.get(), &count, sizeof(count)) == sizeof(count));
    CHECK(count >= 1);

    r.cq().set_eventfd_enabled(false);
    CHECK(run_one(r, [](auto& s) { prep_nop(s); }).result == 0);
    CHECK(::read(efd.get(), &count, sizeof(count)) == -1);
    CHECK(errno == EAGAIN);
    r.cq().set_eventfd_enabled(true);

    reg.unregister_eventfd();
    CHECK(run_one(r, [](auto& s) { prep_nop(s); }).result == 0);
    CHECK(::read(efd.get(), &count, sizeof(count)) == -1);
}

TEST_CASE("an async-only eventfd is signalled only for ops that ran in a worker") {
    ring r(small());
    registrar reg(r);
    unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    reg.register_eventfd_async(efd.get());
    CHECK(run_one(r, [](auto& s) { prep_nop(s); }).result == 0); // inline
    std::uint64_t count = 0;
    CHECK(::read(efd.get(), &count, sizeof(count)) == -1);
    CHECK(run_one(r, [](auto& s) {
              prep_nop(s);
              add_flags(s, sqe_flag::async); // punted to io-wq
          }).result == 0);
    CHECK(::read(efd.get(), &count, sizeof(count)) == sizeof(count));
    CHECK(count >= 1);
}

TEST_CASE("a second eventfd fails with EBUSY") {
    ring r(small());
    registrar reg(r);
    unique_fd efd(::eventfd(0, EFD_CLOEXEC));
    reg.register_eventfd(efd.get());
    const tram::error e = error_from([&] { reg.register_eventfd(efd.get()); });
    CHECK(e.errnum() == EBUSY);
    CHECK_THAT(e.what(), Contains("eventfd"));
}

TEST_CASE("a registered personality runs ops, and an unknown one is refused") {
    ring r(small());
    registrar reg(r);
    const std::uint16_t id = reg.register_personality();
    CHECK(id > 0);
    CHECK(run_one(r, [&](auto& s) {
              prep_nop(s);
              set_personality(s, id);
          }).result == 0);
    reg.unregister_personality(id);
    CHECK(run_one(r, [&](auto& s) {
              prep_nop(s);
              set_personality(s, id);
          }).result == -EINVAL);
    const tram::error e = error_from([&] { reg.unregister_personality(id); });
    CHECK(e.errnum() == EINVAL);
    CHECK_THAT(e.what(), Contains("personality"));
}

TEST_CASE("io-wq worker limits are set and the previous ones handed back") {
    ring r(small());
    registrar reg(r);
    (void)reg.set_iowq_max_workers(2, 3);
    const auto previous = reg.set_iowq_max_workers(0, 0); // 0: only read
    CHECK(previous.first == 2);
    CHECK(previous.second == 3);
    // The ring still runs work in its (now small) pool.
    CHECK(run_one(r, [](auto& s) {
              prep_nop(s);
              add_flags(s, sqe_flag::async);
          }).result == 0);
}

TEST_CASE("io-wq affinity can be set to a CPU and cleared") {
    ring r(small());
    registrar reg(r);
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    reg.set_iowq_affinity(cpus);
    CHECK(run_one(r, [](auto& s) {
              prep_nop(s);
              add_flags(s, sqe_flag::async);
          }).result == 0);
    reg.clear_iowq_affinity();
}
