// Tests of include/tram/sqe.hpp: every op family prepared by a prep_* function and run for
// real against the kernel: files in a temporary directory, pipes, socketpairs, and TCP/UDP
// over 127.0.0.1. Each checks the result code, the data moved and the CQE flags.
#include <tram/buffer_ring.hpp>
#include <tram/registrar.hpp>
#include <tram/ring.hpp>

#include "reap.hpp"
#include "skip.hpp"
#include "sockets.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;
using test::sqe_of;

namespace {

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

std::string text(std::span<const std::byte> b, std::size_t n) {
    return {reinterpret_cast<const char*>(b.data()), n};
}

template <std::size_t N>
std::string text(const std::array<std::byte, N>& b, int n) {
    return text(std::span<const std::byte>(b), static_cast<std::size_t>(n));
}

// One op: prepare, submit, reap its completion.
template <typename Prep>
completion run_one(ring& r, Prep&& prep, std::uint64_t user_data = 1) {
    io_uring_sqe& sqe = sqe_of(r);
    prep(sqe);
    set_user_data(sqe, user_data);
    const completion c = test::reap_one(r);
    CHECK(c.user_data == user_data);
    return c;
}

completion find(const std::vector<completion>& cs, std::uint64_t user_data) {
    const auto it = std::find_if(cs.begin(), cs.end(),
                                 [&](const completion& c) { return c.user_data == user_data; });
    REQUIRE(it != cs.end());
    return *it;
}

unique_fd open_file(const std::string& path, int flags = O_RDWR) {
    unique_fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
    REQUIRE(fd);
    return fd;
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

ring_options small(unsigned entries = 16) {
    ring_options o;
    o.entries = entries;
    return o;
}

} // namespace

// ---- Reads and writes --------------------------------------------------------------------

TEST_CASE("write and read move bytes to and from a file at the given offsets") {
    ring r(small());
    test::temp_dir dir;
    unique_fd fd = open_file(dir / "f", O_RDWR | O_CREAT);
    const std::string msg = "hello world";
    CHECK(run_one(r, [&](auto& s) { prep_write(s, fd.get(), bytes(msg), 0); }).result == 11);
    std::array<std::byte, 16> buf{};
    CHECK(run_one(r, [&](auto& s) { prep_read(s, fd.get(), buf, 6); }).result == 5);
    CHECK(text(buf, 5) == "world");
    CHECK(dir.read_file("f") == msg);
}

TEST_CASE("reads and writes at current_position advance the file position") {
    ring r(small());
    test::temp_dir dir;
    unique_fd fd = open_file(dir / "f", O_RDWR | O_CREAT);
    const std::string a = "abc", b = "def";
    CHECK(run_one(r, [&](auto& s) {
              prep_write(s, fd.get(), bytes(a), current_position);
          }).result == 3);
    CHECK(run_one(r, [&](auto& s) {
              prep_write(s, fd.get(), bytes(b), current_position);
          }).result == 3);
    CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 6);
    CHECK(dir.read_file("f") == "abcdef");
}

TEST_CASE("a read at the end of a file returns 0") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("f", "xy");
    unique_fd fd = open_file(dir / "f", O_RDONLY);
    std::array<std::byte, 4> buf{};
    CHECK(run_one(r, [&](auto& s) { prep_read(s, fd.get(), buf, 2); }).result == 0);
}

TEST_CASE("writev and readv gather and scatter over several buffers") {
    ring r(small());
    test::temp_dir dir;
    unique_fd fd = open_file(dir / "f", O_RDWR | O_CREAT);
    std::string p1 = "vec", p2 = "tored";
    const iovec out[] = {{p1.data(), p1.size()}, {p2.data(), p2.size()}};
    CHECK(run_one(r, [&](auto& s) { prep_writev(s, fd.get(), out, 0); }).result == 8);
    char a[4]{}, b[4]{};
    const iovec in[] = {{a, 4}, {b, 4}};
    CHECK(run_one(r, [&](auto& s) { prep_readv(s, fd.get(), in, 0); }).result == 8);
    CHECK(std::string(a, 4) == "vect");
    CHECK(std::string(b, 4) == "ored");
}

TEST_CASE("a read of a pipe waits for data and returns what was written") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    std::array<std::byte, 8> buf{};
    io_uring_sqe& sqe = sqe_of(r);
    prep_read(sqe, rd.get(), buf, current_position);
    set_user_data(sqe, 3);
    CHECK(r.submit() == 1);
    CHECK(r.submit_and_wait(1, 20ms) == -ETIME); // nothing yet
    REQUIRE(::write(wr.get(), "pipe", 4) == 4);
    const completion c = test::reap_one(r);
    CHECK(c.result == 4);
    CHECK(text(buf, 4) == "pipe");
}

// ---- Syncing and space management ----------------------------------------------------------

TEST_CASE("fsync, fdatasync and sync_file_range succeed on a written file") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("f", "data to sync");
    unique_fd fd = open_file(dir / "f");
    CHECK(run_one(r, [&](auto& s) { prep_fsync(s, fd.get()); }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_fsync(s, fd.get(), fsync_datasync); }).result == 0);
    CHECK(run_one(r, [&](auto& s) {
              prep_sync_file_range(s, fd.get(), 0, 12, SYNC_FILE_RANGE_WRITE);
          }).result == 0);
}

TEST_CASE("fsync of a bad descriptor fails with -EBADF") {
    ring r(small());
    CHECK(run_one(r, [&](auto& s) { prep_fsync(s, 1'000'000); }).result == -EBADF);
}

TEST_CASE("fallocate grows a file and ftruncate shrinks it") {
    ring r(small());
    test::temp_dir dir;
    unique_fd fd = open_file(dir / "f", O_RDWR | O_CREAT);
    CHECK(run_one(r, [&](auto& s) { prep_fallocate(s, fd.get(), 0, 0, 8192); }).result == 0);
    CHECK(stat_of(dir / "f").st_size == 8192);
    if (test::lacks(opcode::ftruncate)) return;
    CHECK(run_one(r, [&](auto& s) { prep_ftruncate(s, fd.get(), 100); }).result == 0);
    CHECK(stat_of(dir / "f").st_size == 100);
}

TEST_CASE("fadvise and madvise give advice the kernel accepts, and refuse bad advice") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("f", std::string(4096, 'a'));
    unique_fd fd = open_file(dir / "f");
    CHECK(run_one(r, [&](auto& s) {
              prep_fadvise(s, fd.get(), 0, 4096, POSIX_FADV_DONTNEED);
          }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_fadvise(s, fd.get(), 0, 4096, 12345); }).result ==
          -EINVAL);
    const std::size_t len = 4 * 4096;
    void* mem = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    static_cast<char*>(mem)[0] = 'x';
    CHECK(run_one(r, [&](auto& s) { prep_madvise(s, mem, len, MADV_DONTNEED); }).result == 0);
    CHECK(static_cast<char*>(mem)[0] == 0); // MADV_DONTNEED dropped the private page
    ::munmap(mem, len);
}

// ---- Opening, closing and the file system -----------------------------------------------------

TEST_CASE("openat creates a file, and close closes the descriptor it returned") {
    ring r(small());
    test::temp_dir dir;
    const completion c = run_one(
        r, [&](auto& s) { prep_openat(s, dir.fd(), "new", O_CREAT | O_WRONLY | O_CLOEXEC, 0600); });
    REQUIRE(c.result >= 0);
    CHECK(test::is_open(c.result));
    CHECK((stat_of(dir / "new").st_mode & 0777) == 0600);
    CHECK(run_one(r, [&](auto& s) { prep_close(s, c.result); }).result == 0);
    CHECK_FALSE(test::is_open(c.result));
}

TEST_CASE("openat of a missing file fails with -ENOENT") {
    ring r(small());
    test::temp_dir dir;
    CHECK(run_one(r, [&](auto& s) { prep_openat(s, dir.fd(), "missing", O_RDONLY, 0); }).result ==
          -ENOENT);
}

TEST_CASE("openat2 opens beneath a directory and refuses to leave it") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("inside", "x");
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH;
    const completion ok = run_one(r, [&](auto& s) { prep_openat2(s, dir.fd(), "inside", &how); });
    REQUIRE(ok.result >= 0);
    ::close(ok.result);
    CHECK(run_one(r, [&](auto& s) {
              prep_openat2(s, dir.fd(), "../../etc/passwd", &how);
          }).result == -EXDEV);
}

TEST_CASE("statx reports a file's size and type") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("f", "twelve bytes");
    struct statx stx {};
    CHECK(run_one(r, [&](auto& s) {
              prep_statx(s, dir.fd(), "f", 0, STATX_SIZE | STATX_MODE, &stx);
          }).result == 0);
    CHECK(stx.stx_size == 12);
    CHECK(S_ISREG(stx.stx_mode));
}

TEST_CASE("mkdirat, renameat, linkat, symlinkat and unlinkat change the directory tree") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("a", "content");
    CHECK(run_one(r, [&](auto& s) { prep_mkdirat(s, dir.fd(), "sub", 0755); }).result == 0);
    CHECK(S_ISDIR(stat_of(dir / "sub").st_mode));
    CHECK(run_one(r, [&](auto& s) { prep_mkdirat(s, dir.fd(), "sub", 0755); }).result == -EEXIST);

    CHECK(run_one(r, [&](auto& s) { prep_renameat(s, dir.fd(), "a", dir.fd(), "sub/b"); }).result ==
          0);
    CHECK(::access((dir / "a").c_str(), F_OK) != 0);
    CHECK(dir.read_file("sub/b") == "content");
    CHECK(run_one(r, [&](auto& s) {
              prep_renameat(s, dir.fd(), "missing", dir.fd(), "x");
          }).result == -ENOENT);

    CHECK(run_one(r, [&](auto& s) {
              prep_linkat(s, dir.fd(), "sub/b", dir.fd(), "hard");
          }).result == 0);
    CHECK(stat_of(dir / "hard").st_nlink == 2);

    CHECK(run_one(r, [&](auto& s) { prep_symlinkat(s, "sub/b", dir.fd(), "soft"); }).result == 0);
    char target[64]{};
    CHECK(::readlink((dir / "soft").c_str(), target, sizeof(target)) == 5);
    CHECK(std::string(target) == "sub/b");
    CHECK(dir.read_file("soft") == "content");

    CHECK(run_one(r, [&](auto& s) { prep_unlinkat(s, dir.fd(), "soft"); }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_unlinkat(s, dir.fd(), "hard"); }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_unlinkat(s, dir.fd(), "sub", AT_REMOVEDIR); }).result ==
          -ENOTEMPTY);
    CHECK(run_one(r, [&](auto& s) { prep_unlinkat(s, dir.fd(), "sub/b"); }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_unlinkat(s, dir.fd(), "sub", AT_REMOVEDIR); }).result ==
          0);
    CHECK(::access((dir / "sub").c_str(), F_OK) != 0);
}

TEST_CASE("setxattr and getxattr, by path and by descriptor, store and return a value") {
    ring r(small());
    test::temp_dir dir;
    const std::string path = dir.write_file("f", "x");
    const std::string value = "tram-value";
    const completion set = run_one(r, [&](auto& s) {
        prep_setxattr(s, path.c_str(), "user.tram", std::span(value.data(), value.size()));
    });
    if (set.result == -EOPNOTSUPP) {
        test::skip("the file system of /tmp refuses user xattrs (EOPNOTSUPP)");
        return;
    }
    REQUIRE(set.result == 0);
    std::array<char, 32> got{};
    CHECK(run_one(r, [&](auto& s) { prep_getxattr(s, path.c_str(), "user.tram", got); }).result ==
          10);
    CHECK(std::string(got.data(), 10) == value);
    CHECK(run_one(r, [&](auto& s) {
              prep_getxattr(s, path.c_str(), "user.missing", got);
          }).result == -ENODATA);

    unique_fd fd = open_file(path);
    const std::string v2 = "by-fd";
    CHECK(run_one(r, [&](auto& s) {
              prep_fsetxattr(s, fd.get(), "user.other", std::span(v2.data(), v2.size()));
          }).result == 0);
    got = {};
    CHECK(run_one(r, [&](auto& s) { prep_fgetxattr(s, fd.get(), "user.other", got); }).result == 5);
    CHECK(std::string(got.data(), 5) == v2);
    CHECK(run_one(r, [&](auto& s) {
              prep_fsetxattr(s, fd.get(), "user.other", std::span(v2.data(), v2.size()),
                             XATTR_CREATE);
          }).result == -EEXIST);
}

// ---- Splice and tee ---------------------------------------------------------------------------

TEST_CASE("splice moves bytes from a file into a pipe, and tee copies them to another pipe") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("f", "0123456789");
    unique_fd file = open_file(dir / "f", O_RDONLY);
    auto [rd1, wr1] = test::make_pipe();
    auto [rd2, wr2] = test::make_pipe();
    CHECK(run_one(r, [&](auto& s) {
              prep_splice(s, file.get(), 2, wr1.get(), no_offset, 5);
          }).result == 5);
    CHECK(run_one(r, [&](auto& s) { prep_tee(s, rd1.get(), wr2.get(), 5); }).result == 5);
    char a[8]{}, b[8]{};
    CHECK(::read(rd1.get(), a, sizeof(a)) == 5);
    CHECK(::read(rd2.get(), b, sizeof(b)) == 5);
    CHECK(std::string(a, 5) == "23456");
    CHECK(std::string(b, 5) == "23456");
}

TEST_CASE("splice between two files fails with -EINVAL, since neither is a pipe") {
    ring r(small());
    test::temp_dir dir;
    dir.write_file("a", "abc");
    unique_fd a = open_file(dir / "a", O_RDONLY);
    unique_fd b = open_file(dir / "b", O_RDWR | O_CREAT);
    CHECK(run_one(r, [&](auto& s) { prep_splice(s, a.get(), 0, b.get(), 0, 3); }).result ==
          -EINVAL);
}

TEST_CASE("the pipe op creates a working pipe") {
    if (test::lacks(opcode::pipe)) return;
    ring r(small());
    int fds[2] = {-1, -1};
    CHECK(run_one(r, [&](auto& s) { prep_pipe(s, fds, O_CLOEXEC); }).result == 0);
    REQUIRE(fds[0] >= 0);
    REQUIRE(fds[1] >= 0);
    CHECK(::write(fds[1], "p", 1) == 1);
    char c = 0;
    CHECK(::read(fds[0], &c, 1) == 1);
    CHECK(c == 'p');
    ::close(fds[0]);
    ::close(fds[1]);
}

// ---- Polling
// ----------------------------------------------------------------------------------------

TEST_CASE("a one-shot poll completes with the ready events once data arrives") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    io_uring_sqe& sqe = sqe_of(r);
    prep_poll_add(sqe, rd.get(), POLLIN);
    set_user_data(sqe, 1);
    CHECK(r.submit() == 1);
    CHECK(r.submit_and_wait(1, 20ms) == -ETIME);
    REQUIRE(::write(wr.get(), "x", 1) == 1);
    const completion c = test::reap_one(r);
    CHECK((c.result & POLLIN) != 0);
    CHECK_FALSE(c.more());
}

TEST_CASE("poll_remove cancels a pending poll") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    io_uring_sqe& poll = sqe_of(r);
    prep_poll_add(poll, rd.get(), POLLIN);
    set_user_data(poll, 1);
    CHECK(r.submit() == 1);
    io_uring_sqe& rm = sqe_of(r);
    prep_poll_remove(rm, 1);
    set_user_data(rm, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK(find(cs, 2).result == 0);
    CHECK(run_one(
              r, [](auto& s) { prep_poll_remove(s, 12345); }, 3)
              .result == -ENOENT);
}

TEST_CASE("poll_update changes a pending poll's events and user_data") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    io_uring_sqe& poll = sqe_of(r);
    prep_poll_add(poll, a.get(), POLLIN); // nothing to read: stays pending
    set_user_data(poll, 1);
    CHECK(r.submit() == 1);
    io_uring_sqe& up = sqe_of(r);
    prep_poll_update(up, 1, 7, POLLOUT, IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA);
    set_user_data(up, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == 0);
    CHECK((find(cs, 7).result & POLLOUT) != 0); // writable at once, under its new user_data
}

TEST_CASE("a multishot poll posts a CQE with MORE per wakeup until it is removed") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    io_uring_sqe& poll = sqe_of(r);
    prep_poll_multishot(poll, a.get(), POLLIN);
    set_user_data(poll, 1);
    CHECK(r.submit() == 1);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(::write(b.get(), "x", 1) == 1);
        const completion c = test::reap_one(r);
        CHECK(c.user_data == 1);
        CHECK((c.result & POLLIN) != 0);
        CHECK(c.more());
        char ch;
        REQUIRE(::read(a.get(), &ch, 1) == 1);
    }
    io_uring_sqe& rm = sqe_of(r);
    prep_poll_remove(rm, 1);
    set_user_data(rm, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == 0);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK_FALSE(find(cs, 1).more());
}

TEST_CASE("epoll_ctl adds a descriptor to an epoll set, and refuses to add it twice") {
    if (test::lacks(opcode::epoll_ctl)) return;
    ring r(small());
    unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    REQUIRE(ep);
    auto [rd, wr] = test::make_pipe();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 99;
    CHECK(run_one(r, [&](auto& s) {
              prep_epoll_ctl(s, ep.get(), rd.get(), EPOLL_CTL_ADD, &ev);
          }).result == 0);
    CHECK(run_one(r, [&](auto& s) {
              prep_epoll_ctl(s, ep.get(), rd.get(), EPOLL_CTL_ADD, &ev);
          }).result == -EEXIST);
    REQUIRE(::write(wr.get(), "e", 1) == 1);
    epoll_event out{};
    CHECK(::epoll_wait(ep.get(), &out, 1, 1000) == 1);
    CHECK(out.data.u64 == 99);
}

TEST_CASE("epoll_wait returns the ready events of an epoll set") {
    if (test::lacks(opcode::epoll_wait)) return;
    ring r(small());
    unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    auto [rd, wr] = test::make_pipe();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 5;
    REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, rd.get(), &ev) == 0);
    REQUIRE(::write(wr.get(), "e", 1) == 1);
    std::array<epoll_event, 4> out{};
    CHECK(run_one(r, [&](auto& s) { prep_epoll_wait(s, ep.get(), out); }).result == 1);
    CHECK(out[0].data.u64 == 5);
}

// ---- Timeouts and cancellation ------------------------------------------------------------------

TEST_CASE("a timeout completes with -ETIME once its time is up") {
    ring r(small());
    __kernel_timespec ts{0, 20'000'000};
    const auto start = std::chrono::steady_clock::now();
    CHECK(run_one(r, [&](auto& s) { prep_timeout(s, &ts); }).result == -ETIME);
    CHECK(std::chrono::steady_clock::now() - start >= 15ms);
}

TEST_CASE("a timeout with a count completes with 0 once that many other CQEs were posted") {
    ring r(small());
    __kernel_timespec ts{10, 0};
    io_uring_sqe& t = sqe_of(r);
    prep_timeout(t, &ts, 2);
    set_user_data(t, 1);
    CHECK(r.submit() == 1);
    io_uring_sqe& n1 = sqe_of(r);
    prep_nop(n1);
    set_user_data(n1, 2);
    io_uring_sqe& n2 = sqe_of(r);
    prep_nop(n2);
    set_user_data(n2, 3);
    const auto cs = test::reap(r, 3, 2s);
    CHECK(find(cs, 1).result == 0);
}

TEST_CASE("timeout_remove cancels a pending timeout, and timeout_update shortens one") {
    ring r(small());
    __kernel_timespec long_ts{10, 0};
    io_uring_sqe& t = sqe_of(r);
    prep_timeout(t, &long_ts);
    set_user_data(t, 1);
    CHECK(r.submit() == 1);
    io_uring_sqe& rm = sqe_of(r);
    prep_timeout_remove(rm, 1);
    set_user_data(rm, 2);
    auto cs = test::reap(r, 2);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK(find(cs, 2).result == 0);
    CHECK(run_one(
              r, [](auto& s) { prep_timeout_remove(s, 1); }, 3)
              .result == -ENOENT);

    io_uring_sqe& t2 = sqe_of(r);
    prep_timeout(t2, &long_ts);
    set_user_data(t2, 4);
    CHECK(r.submit() == 1);
    __kernel_timespec short_ts{0, 10'000'000};
    io_uring_sqe& up = sqe_of(r);
    prep_timeout_update(up, &short_ts, 4);
    set_user_data(up, 5);
    const auto start = std::chrono::steady_clock::now();
    cs = test::reap(r, 2, 2s);
    CHECK(find(cs, 5).result == 0);
    CHECK(find(cs, 4).result == -ETIME);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("a link_timeout cancels the linked op when it fires") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    std::array<std::byte, 4> buf{};
    __kernel_timespec ts{0, 20'000'000};
    auto range = r.sq().reserve(2);
    REQUIRE(range.has_value());
    prep_read((*range)[0], rd.get(), buf, current_position); // never gets data
    prep_link_timeout((*range)[1], &ts);
    set_user_data((*range)[0], 1);
    set_user_data((*range)[1], 2);
    range->link();
    const auto cs = test::reap(r, 2, 2s);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK(find(cs, 2).result == -ETIME);
}

TEST_CASE("a link_timeout that does not fire is cancelled when its op completes") {
    ring r(small());
    __kernel_timespec ts{10, 0};
    auto range = r.sq().reserve(2);
    REQUIRE(range.has_value());
    prep_nop((*range)[0]);
    prep_link_timeout((*range)[1], &ts);
    set_user_data((*range)[0], 1);
    set_user_data((*range)[1], 2);
    range->link();
    const auto cs = test::reap(r, 2, 2s);
    CHECK(find(cs, 1).result == 0);
    CHECK(find(cs, 2).result == -ECANCELED);
}

TEST_CASE("async_cancel by user_data cancels that op, and reports -ENOENT for none") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    std::array<std::byte, 4> buf{};
    io_uring_sqe& rd_sqe = sqe_of(r);
    prep_read(rd_sqe, rd.get(), buf, current_position);
    set_user_data(rd_sqe, 1);
    CHECK(r.submit() == 1);
    io_uring_sqe& c = sqe_of(r);
    prep_cancel(c, 1);
    set_user_data(c, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK(find(cs, 2).result == 0);
    CHECK(run_one(
              r, [](auto& s) { prep_cancel(s, 1); }, 3)
              .result == -ENOENT);
}

TEST_CASE("async_cancel by fd with all cancels every op on that descriptor") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    auto [other_rd, other_wr] = test::make_pipe();
    std::array<std::byte, 4> b1{}, b2{}, b3{};
    for (auto [ud, fd, buf] : {std::tuple{1, rd.get(), &b1}, std::tuple{2, rd.get(), &b2},
                               std::tuple{3, other_rd.get(), &b3}}) {
        io_uring_sqe& s = sqe_of(r);
        prep_read(s, fd, *buf, current_position);
        set_user_data(s, static_cast<std::uint64_t>(ud));
    }
    CHECK(r.submit() == 3);
    io_uring_sqe& c = sqe_of(r);
    prep_cancel_fd(c, rd.get(), true);
    set_user_data(c, 9);
    const auto cs = test::reap(r, 3);
    CHECK(find(cs, 9).result == 2);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK(find(cs, 2).result == -ECANCELED);
    // The read of the other pipe is untouched: it completes once data comes.
    REQUIRE(::write(other_wr.get(), "z", 1) == 1);
    CHECK(test::reap_one(r).result == 1);
}

TEST_CASE("async_cancel any cancels an op in flight whatever its user_data") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    std::array<std::byte, 4> buf{};
    io_uring_sqe& s = sqe_of(r);
    prep_read(s, rd.get(), buf, current_position);
    set_user_data(s, 0xdead);
    CHECK(r.submit() == 1);
    io_uring_sqe& c = sqe_of(r);
    prep_cancel_any(c);
    set_user_data(c, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 0xdead).result == -ECANCELED);
    CHECK(find(cs, 2).result == 1); // ANY cancels every match and counts them
}

// ---- Sockets
// ---------------------------------------------------------------------------------------

TEST_CASE("accept takes a loopback connection and reports the peer address") {
    ring r(small());
    test::loopback_listener l;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    io_uring_sqe& s = sqe_of(r);
    prep_accept(s, l.fd(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    set_user_data(s, 1);
    CHECK(r.submit() == 1);
    unique_fd client = l.connect_client();
    const completion c = test::reap_one(r);
    REQUIRE(c.result >= 0);
    unique_fd server(c.result);
    CHECK(len == sizeof(sockaddr_in));
    CHECK(peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(::write(client.get(), "hi", 2) == 2);
    char buf[2];
    CHECK(::read(server.get(), buf, 2) == 2);
}

TEST_CASE("accept on a descriptor that is no socket fails with -ENOTSOCK") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    CHECK(run_one(r, [&](auto& s) { prep_accept(s, rd.get(), nullptr, nullptr); }).result ==
          -ENOTSOCK);
}

TEST_CASE("a multishot accept posts one CQE with MORE per connection until cancelled") {
    ring r(small());
    test::loopback_listener l;
    io_uring_sqe& s = sqe_of(r);
    prep_multishot_accept(s, l.fd(), SOCK_CLOEXEC);
    set_user_data(s, 1);
    CHECK(r.submit() == 1);
    std::vector<unique_fd> clients, servers;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(l.connect_client());
        const completion c = test::reap_one(r);
        REQUIRE(c.result >= 0);
        CHECK(c.more());
        servers.emplace_back(c.result);
    }
    io_uring_sqe& c = sqe_of(r);
    prep_cancel(c, 1);
    set_user_data(c, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == 0);
    CHECK(find(cs, 1).result == -ECANCELED);
    CHECK_FALSE(find(cs, 1).more());
}

TEST_CASE("accept_direct puts the connection into the registered file table") {
    ring r(small());
    registrar reg(r);
    reg.register_files_sparse(4);
    test::loopback_listener l;
    io_uring_sqe& s = sqe_of(r);
    prep_accept_direct(s, l.fd(), nullptr, nullptr, 0, 2);
    set_user_data(s, 1);
    CHECK(r.submit() == 1);
    unique_fd client = l.connect_client();
    CHECK(test::reap_one(r).result == 0); // into slot 2 as asked
    // The direct descriptor works through its registered_fd.
    const std::string msg = "direct";
    REQUIRE(::write(client.get(), msg.data(), msg.size()) == 6);
    std::array<std::byte, 8> buf{};
    CHECK(run_one(
              r, [&](auto& sq) { prep_recv(sq, registered_fd{2}, buf); }, 2)
              .result == 6);
    CHECK(text(buf, 6) == msg);

    io_uring_sqe& m = sqe_of(r);
    prep_multishot_accept_direct(m, l.fd());
    set_user_data(m, 3);
    CHECK(r.submit() == 1);
    unique_fd c2 = l.connect_client();
    const completion c = test::reap_one(r);
    CHECK(c.user_data == 3);
    CHECK(c.result >= 0); // the slot the kernel picked
    CHECK(c.result != 2);
    CHECK(c.result < 4);
    CHECK(c.more());
    CHECK(run_one(
              r, [](auto& sq) { prep_cancel(sq, 3); }, 4)
              .result == 0);
    CHECK(test::reap_one(r).user_data == 3);
}

TEST_CASE("connect reaches a loopback listener, and a closed port refuses") {
    ring r(small());
    test::loopback_listener l;
    unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(run_one(r, [&](auto& s) {
              prep_connect(s, sock.get(), l.sockaddr_ptr(), sizeof(sockaddr_in));
          }).result == 0);
    unique_fd server = l.accept_blocking();

    sockaddr_in closed = l.address();
    {
        test::loopback_listener gone; // bind a port, then free it
        closed = gone.address();
    }
    unique_fd sock2(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(run_one(r, [&](auto& s) {
              prep_connect(s, sock2.get(), reinterpret_cast<sockaddr*>(&closed), sizeof(closed));
          }).result == -ECONNREFUSED);
}

TEST_CASE("socket creates a descriptor, also straight into the file table") {
    if (test::lacks(opcode::socket)) return;
    ring r(small());
    const completion c =
        run_one(r, [](auto& s) { prep_socket(s, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    REQUIRE(c.result >= 0);
    unique_fd sock(c.result);
    int type = 0;
    socklen_t len = sizeof(type);
    REQUIRE(::getsockopt(sock.get(), SOL_SOCKET, SO_TYPE, &type, &len) == 0);
    CHECK(type == SOCK_STREAM);

    registrar reg(r);
    reg.register_files_sparse(2);
    CHECK(run_one(r, [](auto& s) { prep_socket_direct(s, AF_INET, SOCK_DGRAM, 0, 1); }).result ==
          0);
    CHECK(run_one(r, [](auto& s) {
              prep_socket_direct(s, AF_INET, SOCK_DGRAM, 0, alloc_file_index);
          }).result == 0); // slot 0, the only free one
    CHECK(run_one(r, [](auto& s) {
              prep_socket_direct(s, AF_INET, SOCK_DGRAM, 0, alloc_file_index);
          }).result == -ENFILE);
}

TEST_CASE("bind and listen set up a listener that a client can connect to") {
    if (test::lacks(opcode::bind) || test::lacks(opcode::listen)) return;
    ring r(small());
    unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = test::loopback_any_port();
    CHECK(run_one(r, [&](auto& s) {
              prep_bind(s, sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
          }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_listen(s, sock.get(), 8); }).result == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    CHECK(addr.sin_port != 0);
    unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    // A second bind of the same socket fails.
    CHECK(run_one(r, [&](auto& s) {
              prep_bind(s, sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
          }).result == -EINVAL);
}

TEST_CASE("send and recv move bytes over a socketpair") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    const std::string msg = "ping";
    CHECK(run_one(r, [&](auto& s) { prep_send(s, a.get(), bytes(msg)); }).result == 4);
    std::array<std::byte, 16> buf{};
    CHECK(run_one(r, [&](auto& s) { prep_recv(s, b.get(), buf); }).result == 4);
    CHECK(text(buf, 4) == "ping");
}

TEST_CASE("send_to reaches an unconnected UDP socket on loopback") {
    ring r(small());
    unique_fd rx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = test::loopback_any_port();
    REQUIRE(::bind(rx.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(rx.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    unique_fd tx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const std::string msg = "datagram";
    CHECK(run_one(r, [&](auto& s) {
              prep_send_to(s, tx.get(), bytes(msg), reinterpret_cast<sockaddr*>(&addr),
                           sizeof(addr));
          }).result == 8);
    char buf[16];
    CHECK(::recv(rx.get(), buf, sizeof(buf), 0) == 8);
    CHECK(std::string(buf, 8) == msg);
}

TEST_CASE("recv on a socket whose peer shut down writing returns 0") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    CHECK(run_one(r, [&](auto& s) { prep_shutdown(s, a.get(), SHUT_WR); }).result == 0);
    std::array<std::byte, 4> buf{};
    CHECK(run_one(r, [&](auto& s) { prep_recv(s, b.get(), buf); }).result == 0);
    const std::string msg = "x";
    CHECK(run_one(r, [&](auto& s) { prep_send(s, a.get(), bytes(msg), MSG_NOSIGNAL); }).result ==
          -EPIPE);
}

TEST_CASE("recv with buffer selection picks a buffer given with provide_buffers") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_STREAM);
    constexpr unsigned count = 4, size = 32;
    std::vector<std::byte> pool(count * size);
    CHECK(run_one(r, [&](auto& s) {
              prep_provide_buffers(s, pool.data(), size, count, 7, 10);
          }).result == 0);
    REQUIRE(::write(a.get(), "selected", 8) == 8);
    const completion c = run_one(r, [&](auto& s) { prep_recv_select(s, b.get(), 7); });
    CHECK(c.result == 8);
    REQUIRE(c.buffer_id().has_value());
    const unsigned id = *c.buffer_id();
    CHECK(id >= 10);
    CHECK(id < 10 + count);
    CHECK(text(std::span(pool).subspan((id - 10) * size), 8) == "selected");
    // Three left; removing asks for up to 8 and takes those.
    CHECK(run_one(r, [](auto& s) { prep_remove_buffers(s, 8, 7); }).result == 3);
    REQUIRE(::write(a.get(), "none", 4) == 4);
    const completion dry = run_one(r, [&](auto& s) { prep_recv_select(s, b.get(), 7); });
    CHECK(dry.result == -ENOBUFS);
    CHECK_FALSE(dry.buffer_id().has_value());
}

TEST_CASE("read with buffer selection picks a provided buffer") {
    ring r(small());
    auto [rd, wr] = test::make_pipe();
    std::vector<std::byte> pool(2 * 16);
    CHECK(run_one(r, [&](auto& s) { prep_provide_buffers(s, pool.data(), 16, 2, 3, 0); }).result ==
          0);
    REQUIRE(::write(wr.get(), "rd", 2) == 2);
    const completion c =
        run_one(r, [&](auto& s) { prep_read_select(s, rd.get(), 16, current_position, 3); });
    CHECK(c.result == 2);
    REQUIRE(c.buffer_id().has_value());
    CHECK(text(std::span(pool).subspan(*c.buffer_id() * 16u), 2) == "rd");
}

TEST_CASE("sendmsg and recvmsg move a message gathered from several buffers") {
    ring r(small());
    auto [a, b] = test::make_socketpair(SOCK_SEQPACKET);
    std::string p1 = "msg-", p2 = "header";
    iovec out[] = {{p1.data(), p1.size()}, {p2.data(), p2.size()}};
    msghdr m{};
    m.msg_iov = out;
    m.msg_iovlen = 2;
    CHECK(run_one(r, [&](auto& s) { prep_sendmsg(s, a.get(), &m); }).result == 10);
    char buf[32]{};
    iovec in{buf, sizeof(buf)};
    msghdr rm{};
    rm.msg_iov = &in;
    rm.msg_iovlen = 1;
    CHECK(run_one(r, [&](auto& s) { prep_recvmsg(s, b.get(), &rm); }).result == 10);
    CHECK(std::string(buf, 10) == "msg-header");
    CHECK((rm.msg_flags & MSG_TRUNC) == 0);
}

TEST_CASE("send_zc completes twice: the result with MORE, then a notification") {
    if (test::lacks(opcode::send_zc)) return;
    ring r(small());
    test::fd_pair tcp = test::make_tcp_pair();
    const std::string msg(1000, 'z');
    io_uring_sqe& s = sqe_of(r);
    prep_send_zc(s, tcp.first.get(), bytes(msg));
    set_user_data(s, 5);
    const auto cs = test::reap(r, 2);
    CHECK(cs[0].user_data == 5);
    CHECK(cs[0].result == 1000);
    CHECK(cs[0].more());
    CHECK_FALSE(cs[0].notification());
    CHECK(cs[1].user_data == 5);
    CHECK(cs[1].notification());
    CHECK_FALSE(cs[1].more());
    std::string got(1000, '\0');
    std::size_t have = 0;
    while (have < got.size()) {
        const auto n = ::read(tcp.second.get(), got.data() + have, got.size() - have);
        REQUIRE(n > 0);
        have += static_cast<std::size_t>(n);
    }
    CHECK(got == msg);
}

TEST_CASE("sendmsg_zc completes with the result and then a notification") {
    if (test::lacks(opcode::sendmsg_zc)) return;
    ring r(small());
    test::fd_pair tcp = test::make_tcp_pair();
    std::string msg = "zero-copy msg";
    iovec iov{msg.data(), msg.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    io_uring_sqe& s = sqe_of(r);
    prep_sendmsg_zc(s, tcp.first.get(), &m);
    set_user_data(s, 6);
    const auto cs = test::reap(r, 2);
    CHECK(cs[0].result == static_cast<int>(msg.size()));
    CHECK(cs[0].more());
    CHECK(cs[1].notification());
    char buf[32];
    CHECK(::read(tcp.second.get(), buf, sizeof(buf)) == static_cast<long>(msg.size()));
}

TEST_CASE("a socket command reads how many bytes wait in a TCP socket") {
    if (test::lacks(opcode::uring_cmd)) return;
    ring r(small());
    test::fd_pair tcp = test::make_tcp_pair();
    REQUIRE(::write(tcp.first.get(), "12345", 5) == 5);
    std::this_thread::sleep_for(10ms);                   // let loopback deliver
    constexpr std::uint32_t socket_uring_op_siocinq = 0; // SOCKET_URING_OP_SIOCINQ, 6.7
    const completion c = run_one(r, [&](auto& s) {
        prep_socket_cmd(s, tcp.second.get(), socket_uring_op_siocinq, 0, 0, {});
    });
    if (c.result == -EOPNOTSUPP || c.result == -EINVAL) {
        test::skip("socket uring_cmd needs Linux 6.7 or later");
        return;
    }
    CHECK(c.result == 5);
}

// ---- Rings, registered files --------------------------------------------------------------------

TEST_CASE("msg_ring posts a CQE with chosen result and user_data on another ring") {
    if (test::lacks(opcode::msg_ring)) return;
    ring a(small()), b(small());
    CHECK(run_one(a, [&](auto& s) { prep_msg_ring(s, b.fd(), 42, 0xabc); }).result == 0);
    const completion c = test::reap_one(b);
    CHECK(c.user_data == 0xabc);
    CHECK(c.result == 42);
    CHECK(run_one(a, [&](auto& s) {
              prep_msg_ring(s, b.fd(), 1, 0xdef, uapi::msg_ring_flags_pass, 0x40000);
          }).result == 0);
    const completion passed = test::reap_one(b);
    CHECK(passed.user_data == 0xdef);
    CHECK(passed.flags == 0x40000);
    auto [rd, wr] = test::make_pipe();
    CHECK(run_one(a, [&](auto& s) { prep_msg_ring(s, rd.get(), 1, 2); }).result == -EBADFD);
}

TEST_CASE("msg_ring sends a registered file to another ring's table") {
    if (test::lacks(opcode::msg_ring)) return;
    ring a(small()), b(small());
    auto [rd, wr] = test::make_pipe();
    registrar ra(a), rb(b);
    const int fds[] = {wr.get()};
    const auto handles = ra.register_files(fds);
    rb.register_files_sparse(2);
    CHECK(run_one(a, [&](auto& s) { prep_msg_ring_fd(s, b.fd(), handles[0], 1, 0x55); }).result ==
          0);
    CHECK(test::reap_one(b).user_data == 0x55);
    const std::string msg = "sent fd";
    CHECK(run_one(b, [&](auto& s) {
              prep_write(s, registered_fd{1}, bytes(msg), current_position);
          }).result == 7);
    char buf[8];
    CHECK(::read(rd.get(), buf, sizeof(buf)) == 7);
}

TEST_CASE("files_update fills registered slots, and the files work through them") {
    ring r(small());
    registrar reg(r);
    const int empty[] = {-1, -1};
    const auto handles = reg.register_files(empty);
    auto [rd, wr] = test::make_pipe();
    int fds[] = {rd.get()};
    CHECK(run_one(r, [&](auto& s) { prep_files_update(s, fds, 1); }).result == 1);
    REQUIRE(::write(wr.get(), "slot", 4) == 4);
    std::array<std::byte, 8> buf{};
    const completion c =
        run_one(r, [&](auto& s) { prep_read(s, handles[1], buf, current_position); });
    CHECK(c.result == 4);
    CHECK(text(buf, 4) == "slot");
    CHECK(run_one(r, [&](auto& s) { prep_read(s, handles[0], buf, current_position); }).result ==
          -EBADF);
}

TEST_CASE("fixed_fd_install turns a registered file into a normal descriptor") {
    if (test::lacks(opcode::fixed_fd_install)) return;
    ring r(small());
    registrar reg(r);
    auto [rd, wr] = test::make_pipe();
    const int fds[] = {wr.get()};
    const auto handles = reg.register_files(fds);
    const completion c = run_one(r, [&](auto& s) { prep_fixed_fd_install(s, handles[0]); });
    REQUIRE(c.result >= 0);
    unique_fd installed(c.result);
    CHECK((::fcntl(installed.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(::write(installed.get(), "i", 1) == 1);
    char ch;
    CHECK(::read(rd.get(), &ch, 1) == 1);
}

TEST_CASE("openat_direct opens into a registered slot, and close empties it") {
    ring r(small());
    registrar reg(r);
    reg.register_files_sparse(4);
    test::temp_dir dir;
    dir.write_file("f", "direct open");
    CHECK(run_one(r, [&](auto& s) {
              prep_openat_direct(s, dir.fd(), "f", O_RDONLY, 0, 3);
          }).result == 0);
    std::array<std::byte, 16> buf{};
    CHECK(run_one(r, [&](auto& s) { prep_read(s, registered_fd{3}, buf, 0); }).result == 11);
    CHECK(text(buf, 11) == "direct open");
    CHECK(run_one(r, [&](auto& s) { prep_close(s, registered_fd{3}); }).result == 0);
    CHECK(run_one(r, [&](auto& s) { prep_read(s, registered_fd{3}, buf, 0); }).result == -EBADF);
}

// ---- Newer ops
// --------------------------------------------------------------------------------------

TEST_CASE("read_multishot reads a pipe into provided buffers until the writer closes") {
    if (test::lacks(opcode::read_multishot)) return;
    ring r(small());
    buffer_ring bufs(r, 1, 8, 64);
    auto [rd, wr] = test::make_pipe();
    io_uring_sqe& s = sqe_of(r);
    prep_read_multishot(s, rd.get(), 0, current_position, 1);
    set_user_data(s, 1);
    CHECK(r.submit() == 1);
    for (const std::string msg : {"first", "second"}) {
        REQUIRE(::write(wr.get(), msg.data(), msg.size()) == static_cast<long>(msg.size()));
        const completion c = test::reap_one(r);
        CHECK(c.result == static_cast<int>(msg.size()));
        CHECK(c.more());
        REQUIRE(c.buffer_id().has_value());
        CHECK(text(bufs.data(*c.buffer_id(), msg.size()), msg.size()) == msg);
        bufs.recycle(*c.buffer_id());
    }
    wr.reset();
    const completion end = test::reap_one(r);
    CHECK(end.result == 0);
    CHECK_FALSE(end.more());
}

TEST_CASE("waitid reaps a child that exited, with its status") {
    if (test::lacks(opcode::waitid)) return;
    ring r(small());
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(7);
    siginfo_t info{};
    CHECK(run_one(r, [&](auto& s) {
              prep_waitid(s, P_PID, static_cast<id_t>(pid), &info, WEXITED);
          }).result == 0);
    CHECK(info.si_pid == pid);
    CHECK(info.si_code == CLD_EXITED);
    CHECK(info.si_status == 7);
    CHECK(run_one(r, [&](auto& s) {
              prep_waitid(s, P_PID, static_cast<id_t>(pid), &info, WEXITED);
          }).result == -ECHILD);
}

TEST_CASE("futex_wait sleeps until futex_wake wakes it") {
    if (test::lacks(opcode::futex_wait) || test::lacks(opcode::futex_wake)) return;
    ring r(small());
    alignas(4) std::uint32_t word = 0;
    constexpr std::uint32_t flags = uapi::futex2_size_u32 | uapi::futex2_private;
    io_uring_sqe& w = sqe_of(r);
    prep_futex_wait(w, &word, 0, flags);
    set_user_data(w, 1);
    CHECK(r.submit() == 1);
    CHECK(r.submit_and_wait(1, 20ms) == -ETIME); // asleep
    io_uring_sqe& k = sqe_of(r);
    prep_futex_wake(k, &word, 1, flags);
    set_user_data(k, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == 1);
    CHECK(find(cs, 1).result == 0);
    // A value that does not match returns at once with -EAGAIN.
    CHECK(run_one(
              r, [&](auto& s) { prep_futex_wait(s, &word, 5, flags); }, 3)
              .result == -EAGAIN);
}

TEST_CASE("futex_waitv returns the index of the futex that was woken") {
    if (test::lacks(opcode::futex_waitv)) return;
    ring r(small());
    alignas(4) std::uint32_t words[2] = {0, 0};
    std::array<futex_waitv, 2> v{};
    for (int i = 0; i < 2; ++i) {
        v[i].val = 0;
        v[i].uaddr = reinterpret_cast<std::uintptr_t>(&words[i]);
        v[i].flags = uapi::futex2_size_u32 | uapi::futex2_private;
    }
    io_uring_sqe& w = sqe_of(r);
    prep_futex_waitv(w, v);
    set_user_data(w, 1);
    CHECK(r.submit() == 1);
    CHECK(r.submit_and_wait(1, 20ms) == -ETIME);
    io_uring_sqe& k = sqe_of(r);
    prep_futex_wake(k, &words[1], 1, uapi::futex2_size_u32 | uapi::futex2_private);
    set_user_data(k, 2);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == 1);
    CHECK(find(cs, 1).result == 1);
}

// ---- SQE flags
// -------------------------------------------------------------------------------------

TEST_CASE("CQE_SKIP_SUCCESS posts no CQE for an op that succeeds, but one for a failure") {
    ring r(small());
    io_uring_sqe& ok = sqe_of(r);
    prep_nop(ok);
    set_user_data(ok, 1);
    add_flags(ok, sqe_flag::cqe_skip_success);
    std::array<std::byte, 4> buf{};
    io_uring_sqe& bad = sqe_of(r);
    prep_read(bad, 1'000'000, buf, 0);
    set_user_data(bad, 2);
    add_flags(bad, sqe_flag::cqe_skip_success);
    io_uring_sqe& marker = sqe_of(r);
    prep_nop(marker);
    set_user_data(marker, 3);
    const auto cs = test::reap(r, 2);
    CHECK(find(cs, 2).result == -EBADF);
    CHECK(find(cs, 3).result == 0);
    CHECK(test::reap_for(r, 20ms).empty());
}

TEST_CASE("ASYNC and DRAIN flags still run the ops, drain after those before it") {
    ring r(small());
    __kernel_timespec ts{0, 20'000'000};
    io_uring_sqe& t = sqe_of(r);
    prep_timeout(t, &ts);
    set_user_data(t, 1);
    io_uring_sqe& d = sqe_of(r);
    prep_nop(d);
    set_user_data(d, 2);
    add_flags(d, sqe_flag::io_drain | sqe_flag::async);
    const auto cs = test::reap(r, 2, 2s);
    CHECK(cs[0].user_data == 1); // the drained nop waited for the timeout
    CHECK(cs[0].result == -ETIME);
    CHECK(cs[1].user_data == 2);
    CHECK(cs[1].result == 0);
}

TEST_CASE("every prep function resets the SQE, so nothing of an earlier op leaks") {
    ring r(small(1));
    io_uring_sqe& s = sqe_of(r);
    std::memset(&s, 0xff, sizeof(s));
    prep_nop(s);
    set_user_data(s, 1);
    CHECK(s.flags == 0);
    CHECK(s.ioprio == 0);
    CHECK(test::reap_one(r).result == 0);
}
