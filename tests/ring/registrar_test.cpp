// Tests of lib/registrar.cpp: registered buffers and files used through their typed handles
// (the SQE picks the fixed op, index and flag by itself) for real I/O, sparse tables and
// updates, eventfds, personalities, io-wq limits, and the documented registration errors.
#include <tram/buffer_ring.hpp>
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "skip.hpp"
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

// The outcome of a registration beyond RLIMIT_MEMLOCK, reported by a child process through its
// exit code, so that this process keeps its limit and capabilities.
enum memlock_outcome : int {
    as_documented = 0,
    wrong_error = 1,
    no_error = 2,
    cannot_set_up = 3,
};

// Without CAP_IPC_LOCK the kernel charges pinned pages to RLIMIT_MEMLOCK; root has the
// capability and is never charged, so the child drops it (no privilege needed to drop).
bool drop_ipc_lock() noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return false;
    data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
    data[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
    return ::syscall(SYS_capset, &header, data) == 0;
}

bool has_capability(int cap) noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return false;
    return (data[cap / 32].effective & (1U << (cap % 32))) != 0;
}

// Runs `registration` in a child with RLIMIT_MEMLOCK at 64 KiB (and without CAP_IPC_LOCK
// unless `keep_ipc_lock`), and checks the tram::error it throws with `check`.
template <typename Registration, typename Check>
memlock_outcome beyond_memlock(bool keep_ipc_lock, Registration registration, Check check) {
    const pid_t pid = ::fork();
    if (pid < 0) return cannot_set_up;
    if (pid == 0) {
        ::alarm(10);
        const rlimit low{64 * 1024, 64 * 1024};
        if ((!keep_ipc_lock && !drop_ipc_lock()) || ::setrlimit(RLIMIT_MEMLOCK, &low) != 0)
            ::_exit(cannot_set_up);
        try {
            ring_options o;
            o.entries = 4; // 6.18 charges the rings' own memory too: 4 entries fit in 64 KiB
            ring r(o);
            registration(r);
        } catch (const tram::error& e) {
            const bool ok = check(e);
            if (!ok) std::fprintf(stderr, "child got: %s\n", e.what());
            ::_exit(ok ? as_documented : wrong_error);
        } catch (...) {
            ::_exit(wrong_error);
        }
        ::_exit(no_error);
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return cannot_set_up;
    return static_cast<memlock_outcome>(WEXITSTATUS(status));
}

std::vector<std::byte>& one_mebibyte() {
    static std::vector<std::byte> big(std::size_t{1} << 20);
    return big;
}

bool names_memlock(const tram::error& e, const std::string& operation, int kib) {
    const std::string what = e.what();
    return e.errnum() == ENOMEM &&
           what.find(operation + " (" + std::to_string(kib) + " KiB to pin)") !=
               std::string::npos &&
           what.find("RLIMIT_MEMLOCK is 64 KiB") != std::string::npos &&
           what.find("CAP_IPC_LOCK") != std::string::npos &&
           what.find("(ENOMEM)") != std::string::npos;
}

} // namespace

TEST_CASE("registering buffers beyond RLIMIT_MEMLOCK fails with ENOMEM naming the size and the "
          "limit") {
    const auto outcome = beyond_memlock(
        false,
        [](ring& r) {
            const iovec iovs[] = {{one_mebibyte().data(), one_mebibyte().size()}};
            (void)registrar(r).register_buffers(iovs);
        },
        [](const tram::error& e) { return names_memlock(e, "registering buffers", 1024); });
    if (outcome == cannot_set_up) {
        test::skip("could not fork, drop CAP_IPC_LOCK and lower RLIMIT_MEMLOCK");
        return;
    }
    INFO("child outcome (0 as documented, 1 wrong error, 2 no error): " << outcome);
    CHECK(outcome == as_documented);
}

TEST_CASE("filling a sparse buffer slot beyond RLIMIT_MEMLOCK fails the same way") {
    const auto outcome = beyond_memlock(
        false,
        [](ring& r) {
            registrar reg(r);
            reg.register_buffers_sparse(4); // no memory pinned yet
            (void)reg.update_buffer(1, one_mebibyte());
        },
        [](const tram::error& e) {
            return names_memlock(e, "updating a registered buffer", 1024);
        });
    if (outcome == cannot_set_up) {
        test::skip("could not fork, drop CAP_IPC_LOCK and lower RLIMIT_MEMLOCK");
        return;
    }
    INFO("child outcome (0 as documented, 1 wrong error, 2 no error): " << outcome);
    CHECK(outcome == as_documented);
}

// A provided-buffer ring (buffer_ring.hpp) is the other registration that pins memory: its
// descriptors, 16 bytes a buffer. Here beside the others that hit the same limit.
TEST_CASE("a provided-buffer ring beyond RLIMIT_MEMLOCK fails the same way") {
    const auto outcome = beyond_memlock(
        false, [](ring& r) { buffer_ring buffers(r, 1, 8192, 64); },
        [](const tram::error& e) {
            return names_memlock(e, "registering provided-buffer ring 1", 128);
        });
    if (outcome == cannot_set_up) {
        test::skip("could not fork, drop CAP_IPC_LOCK and lower RLIMIT_MEMLOCK");
        return;
    }
    INFO("child outcome (0 as documented, 1 wrong error, 2 no error): " << outcome);
    CHECK(outcome == as_documented);
}

TEST_CASE("a process with CAP_IPC_LOCK registers buffers beyond RLIMIT_MEMLOCK") {
    if (!has_capability(CAP_IPC_LOCK)) {
        test::skip("this process lacks CAP_IPC_LOCK (not root)");
        return;
    }
    const auto outcome = beyond_memlock(
        true,
        [](ring& r) {
            const iovec iovs[] = {{one_mebibyte().data(), one_mebibyte().size()}};
            (void)registrar(r).register_buffers(iovs);
        },
        [](const tram::error&) { return false; });
    INFO("child outcome (2 registered, 1 an error, 3 setup): " << outcome);
    CHECK(outcome == no_error);
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
