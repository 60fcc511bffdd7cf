// Tests of runtime/include/tram/file.hpp: real files in a temporary directory.
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/runtime.hpp>

#include "skip.hpp"
#include "sockets.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}
std::span<std::byte> writable_bytes(std::string& s) {
    return std::as_writable_bytes(std::span(s.data(), s.size()));
}

/// `size` bytes that differ from one offset to the next, so that a misplaced byte shows.
std::string pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
    return s;
}

/// tram::error's what() is the message followed by ": " and the errno's text (std::system_error).
bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

/// Runs `body(args...)` as a task on a fresh driver.
template <typename Body, typename... Args>
auto run_task(Body body, Args&... args) {
    driver d;
    return run(d, body(args...));
}

/// The errno and message of the tram::error that `t` throws (0, "" if none).
struct caught {
    int errnum = 0;
    std::string message;
};
template <typename T>
task<caught> catch_error(task<T> t) {
    try {
        co_await std::move(t);
    } catch (const tram::error& e) {
        co_return caught{e.errnum(), e.what()};
    }
    co_return caught{};
}

} // namespace

TEST_CASE("bytes written at offsets read back at the same offsets") {
    test::temp_dir dir;
    const std::string path = dir / "data";
    const std::string got = run_task(
        [](const std::string& p) -> task<std::string> {
            file f = co_await file::create(p);
            const std::string hello = "hello";
            const std::string world = "world";
            {
                const std::size_t got = co_await f.write(bytes_of(world), 100);
                CHECK(got == 5);
            }
            {
                const std::size_t got = co_await f.write(bytes_of(hello), 0);
                CHECK(got == 5);
            }
            std::string back(5, '\0');
            {
                const std::size_t got = co_await f.read(writable_bytes(back), 100);
                CHECK(got == 5);
            }
            CHECK(back == "world");
            co_return back;
        },
        path);
    CHECK(got == "world");
    const std::string all = dir.read_file("data");
    REQUIRE(all.size() == 105);
    CHECK(all.substr(0, 5) == "hello");
    CHECK(all.substr(5, 95) == std::string(95, '\0'));
    CHECK(all.substr(100) == "world");
}

TEST_CASE("reads and writes without an offset use and advance the file position") {
    test::temp_dir dir;
    const std::string path = dir / "data";
    run_task(
        [](const std::string& p) -> task<> {
            {
                file f = co_await file::create(p);
                {
                    const std::size_t got = co_await f.write(bytes_of(std::string("abc")));
                    CHECK(got == 3);
                }
                {
                    const std::size_t got = co_await f.write(bytes_of(std::string("def")));
                    CHECK(got == 3);
                }
                co_await f.close();
            }
            file f = co_await file::open(p, O_RDONLY);
            std::string part(4, '\0');
            {
                const std::size_t got = co_await f.read(writable_bytes(part));
                CHECK(got == 4);
            }
            CHECK(part == "abcd");
            {
                const std::size_t got = co_await f.read(writable_bytes(part));
                CHECK(got == 2);
            }
            CHECK(part.substr(0, 2) == "ef");
            {
                const std::size_t got = co_await f.read(writable_bytes(part));
                CHECK(got == 0);
            } // end of file: a value, no error
        },
        path);
}

TEST_CASE("write_all and read_exact move every byte of a large odd-sized buffer") {
    test::temp_dir dir;
    const std::string path = dir / "big";
    const std::string data = pattern((1 << 20) + 4099);
    const std::string got = run_task(
        [](const std::string& p, const std::string& in) -> task<std::string> {
            file f = co_await file::create(p);
            co_await f.write_all(bytes_of(in));
            co_await f.write_all(bytes_of(in), in.size()); // and a second copy at an offset
            std::string out(in.size(), '\0');
            co_await f.read_exact(writable_bytes(out), in.size());
            co_return out;
        },
        path, data);
    CHECK(got == data);
    CHECK(dir.read_file("big") == data + data);
}

TEST_CASE("read_exact that meets end of file throws ENODATA with the counts and the path") {
    test::temp_dir dir;
    const std::string path = dir.write_file("short", "0123456789");
    const caught c = run_task(
        [](const std::string& p) -> task<caught> {
            file f = co_await file::open(p);
            std::string buf(4, '\0');
            co_await f.read_exact(writable_bytes(buf), 2); // enough there: fine
            CHECK(buf == "2345");
            std::string more(8, '\0');
            co_return co_await catch_error(f.read_exact(writable_bytes(more), 6));
        },
        path);
    CHECK(c.errnum == ENODATA);
    CHECK(starts_with(c.message,
                      "read_exact " + path + ": end of file after 4 of 8 bytes (ENODATA)"));
}

TEST_CASE("opening a missing path throws ENOENT naming the path") {
    test::temp_dir dir;
    const std::string path = dir / "missing";
    const caught c = run_task(
        [](const std::string& p) -> task<caught> {
            co_return co_await catch_error(
                [](std::string q) -> task<> { file f = co_await file::open(q); }(p));
        },
        path);
    CHECK(c.errnum == ENOENT);
    CHECK(starts_with(c.message, "open " + path + ": No such file or directory (ENOENT)"));
}

TEST_CASE("open relative to a directory descriptor, and openat2 refusing to leave it") {
    test::temp_dir dir;
    dir.write_file("inside", "in");
    const int dirfd = dir.fd();
    const caught c = run_task(
        [](const int& fd) -> task<caught> {
            file f = co_await file::open("inside", O_RDONLY, 0, fd);
            std::string buf(2, '\0');
            co_await f.read_exact(writable_bytes(buf));
            CHECK(buf == "in");
            open_how how{};
            how.flags = O_RDONLY;
            how.resolve = RESOLVE_BENEATH;
            co_return co_await catch_error([](int at, open_how h) -> task<> {
                file g = co_await file::open("../etc", h, at);
            }(fd, how));
        },
        dirfd);
    CHECK(c.errnum == EXDEV);
    CHECK(starts_with(c.message, "open ../etc"));
}

TEST_CASE("vectored reads and writes gather and scatter across buffers") {
    test::temp_dir dir;
    const std::string path = dir / "vec";
    run_task(
        [](const std::string& p) -> task<> {
            file f = co_await file::create(p);
            std::string a = "alpha", b = "-", c = "omega";
            const iovec out[] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
            {
                const std::size_t got = co_await f.writev(out, 10);
                CHECK(got == 11);
            }
            std::string x(3, '\0'), y(8, '\0');
            const iovec in[] = {{x.data(), x.size()}, {y.data(), y.size()}};
            {
                const std::size_t got = co_await f.readv(in, 10);
                CHECK(got == 11);
            }
            CHECK(x == "alp");
            CHECK(y == "ha-omega");
            {
                const std::size_t got = co_await f.writev(out);
                CHECK(got == 11);
            } // at the position: from 0
            {
                const std::size_t got = co_await f.readv(in, 0);
                CHECK(got == 11);
            }
            CHECK(x + y == "alpha-omega");
        },
        path);
}

TEST_CASE("a sparse file reads zeros in its holes and occupies less than its size") {
    test::temp_dir dir;
    const std::string path = dir / "sparse";
    if (test::lacks(opcode::ftruncate)) return;
    run_task(
        [](const std::string& p) -> task<> {
            file f = co_await file::create(p);
            constexpr std::uint64_t size = 64 << 20;
            co_await f.truncate(size);
            const std::string tail = "tail";
            co_await f.write_all(bytes_of(tail), size - tail.size());
            const file_status st = co_await f.stat();
            CHECK(st.size() == size);
            CHECK(st.blocks() * 512 < size / 2);
            std::string hole(4096, 'x');
            co_await f.read_exact(writable_bytes(hole), size / 2);
            CHECK(hole == std::string(4096, '\0'));

            // fallocate allocates a range; punching a hole makes it read as zeros again.
            const std::string data = pattern(1 << 16);
            co_await f.write_all(bytes_of(data), 0);
            co_await f.fallocate(1 << 20, 1 << 20);
            {
                const auto got = co_await f.stat();
                CHECK(got.blocks() * 512 >= (1 << 20) + (1 << 16));
            }
            co_await f.fallocate(4096, 8192, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
            std::string back(data.size(), '\0');
            co_await f.read_exact(writable_bytes(back), 0);
            CHECK(back.substr(0, 4096) == data.substr(0, 4096));
            CHECK(back.substr(4096, 8192) == std::string(8192, '\0'));
            CHECK(back.substr(12288) == data.substr(12288));
            {
                const auto got = co_await f.stat();
                CHECK(got.size() == size);
            }
        },
        path);
}

TEST_CASE("truncate shortens a file, and reads stop at its new end") {
    test::temp_dir dir;
    const std::string path = dir.write_file("t", "0123456789");
    if (test::lacks(opcode::ftruncate)) return;
    run_task(
        [](const std::string& p) -> task<> {
            file f = co_await file::open(p, O_RDWR);
            co_await f.truncate(3);
            std::string buf(10, '\0');
            {
                const std::size_t got = co_await f.read(writable_bytes(buf), 0);
                CHECK(got == 3);
            }
            CHECK(buf.substr(0, 3) == "012");
            {
                const auto got = co_await f.stat();
                CHECK(got.size() == 3);
            }
        },
        path);
    CHECK(dir.read_file("t") == "012");
}

TEST_CASE("stat of an open file agrees with stat(2)") {
    test::temp_dir dir;
    const std::string path = dir.write_file("s", "twelve bytes");
    REQUIRE(::chmod(path.c_str(), 0640) == 0);
    const file_status st = run_task(
        [](const std::string& p) -> task<file_status> {
            file f = co_await file::open(p);
            co_return co_await f.stat();
        },
        path);
    struct stat ref {};
    REQUIRE(::stat(path.c_str(), &ref) == 0);
    CHECK(st.size() == static_cast<std::uint64_t>(ref.st_size));
    CHECK(st.mode() == ref.st_mode);
    CHECK(st.permissions() == 0640);
    CHECK(st.is_regular());
    CHECK_FALSE(st.is_directory());
    CHECK(st.inode() == ref.st_ino);
    CHECK(st.links() == ref.st_nlink);
    CHECK(st.uid() == ref.st_uid);
    CHECK(st.gid() == ref.st_gid);
    CHECK(st.blocks() == static_cast<std::uint64_t>(ref.st_blocks));
    const auto mtime = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(ref.st_mtim.tv_sec) +
            std::chrono::nanoseconds(ref.st_mtim.tv_nsec)));
    CHECK(st.modification_time() == mtime);
}

TEST_CASE("fsync, fdatasync, sync_file_range and fadvise succeed on a written file") {
    test::temp_dir dir;
    const std::string path = dir / "synced";
    run_task(
        [](const std::string& p) -> task<> {
            file f = co_await file::create(p);
            co_await f.write_all(bytes_of(pattern(100000)));
            co_await f.fdatasync();
            co_await f.fsync();
            co_await f.sync_file_range(0, 0,
                                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                           SYNC_FILE_RANGE_WAIT_AFTER);
            co_await f.fadvise(0, 0, POSIX_FADV_SEQUENTIAL);
            co_await f.fadvise(0, 0, POSIX_FADV_DONTNEED);
        },
        path);
    CHECK(dir.read_file("synced") == pattern(100000));
}

TEST_CASE("an explicit close reports success, and a closed file fails with EBADF naming the op") {
    test::temp_dir dir;
    const std::string path = dir.write_file("c", "x");
    int fd = -1;
    const caught c = run_task(
        [](const std::string& p, int& raw) -> task<caught> {
            file f = co_await file::open(p);
            raw = f.fd();
            co_await f.close();
            CHECK_FALSE(f.is_open());
            CHECK_FALSE(test::is_open(raw));
            std::string buf(1, '\0');
            const caught on_read = co_await catch_error([](file& g, std::string& b) -> task<> {
                (void)co_await g.read(writable_bytes(b));
            }(f, buf));
            CHECK(on_read.errnum == EBADF);
            CHECK(starts_with(on_read.message, "read " + p + ": Bad file descriptor (EBADF)"));
            co_return co_await catch_error([](file& g) -> task<> { co_await g.close(); }(f));
        },
        path, fd);
    CHECK(c.errnum == EBADF);
    CHECK(starts_with(c.message, "close " + path));
}

TEST_CASE("the destructor closes through the ring, and the descriptor is gone a turn later") {
    test::temp_dir dir;
    const std::string path = dir.write_file("d", "x");
    driver d;
    int fd = -1;
    std::uint64_t before = 0;
    run(d, [](const std::string& p, int& raw, std::uint64_t& sqes, driver& drv) -> task<> {
        {
            file f = co_await file::open(p);
            raw = f.fd();
            sqes = drv.stats().sqes_submitted;
        } // destroyed here: an IORING_OP_CLOSE is prepared, not a close(2)
        CHECK(test::is_open(raw));
        co_await nop(); // one turn submits it
    }(path, fd, before, d));
    CHECK(d.stats().sqes_submitted >= before + 2); // the close and the nop
    CHECK_FALSE(test::is_open(fd));
}

TEST_CASE("a read on a FIFO ends with ECANCELED on a stop request and ETIME on a timeout") {
    test::temp_dir dir;
    const std::string path = dir / "fifo";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    driver d;
    std::stop_source stop;
    // O_RDWR keeps a writer on the FIFO, so the read waits instead of seeing end of file.
    file f = run(d, [](const std::string& p) -> task<file> {
        co_return co_await file::open(p, O_RDWR);
    }(path));
    spawn(d, [](std::stop_source& s) -> task<> {
        co_await sleep_for(10ms);
        s.request_stop();
    }(stop));
    const auto start = std::chrono::steady_clock::now();
    const caught cancelled = run(d, catch_error([](file& g) -> task<> {
                                        std::byte b[16];
                                        (void)co_await g.read(b);
                                    }(f))
                                        .with_stop_token(stop.get_token()));
    CHECK(cancelled.errnum == ECANCELED);
    CHECK(starts_with(cancelled.message, "read " + path + ": Operation canceled (ECANCELED)"));

    const caught timed_out = run(d, catch_error([](file& g) -> task<> {
                                     std::byte b[16];
                                     (void)co_await g.read(b).with_timeout(10ms);
                                 }(f)));
    CHECK(timed_out.errnum == ETIME);
    CHECK(std::chrono::steady_clock::now() - start < 5s);

    // The FIFO still works afterwards.
    const std::string got = run(d, [](file& g) -> task<std::string> {
        co_await g.write_all(bytes_of(std::string("ping")));
        std::string b(4, '\0');
        co_await g.read_exact(writable_bytes(b));
        co_return b;
    }(f));
    CHECK(got == "ping");
}

TEST_CASE("a pipe end adopted as a file reads what the other end wrote") {
    auto pipe = test::make_pipe();
    driver d;
    file reader = file::adopt(pipe.first.release(), "pipe");
    const std::string msg = "through the pipe";
    REQUIRE(::write(pipe.second.get(), msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
    pipe.second.reset();
    const std::string got = run(d, [](file& r) -> task<std::string> {
        std::string all, chunk(64, '\0');
        while (const std::size_t n = co_await r.read(writable_bytes(chunk)))
            all += chunk.substr(0, n);
        co_return all;
    }(reader));
    CHECK(got == msg);
}

TEST_CASE("registered buffers and a registered file use READ_FIXED and WRITE_FIXED") {
    test::temp_dir dir;
    const std::string path = dir / "fixed";
    driver d;
    std::vector<std::byte> memory(8192);
    registrar reg(d.ring());
    const iovec iov{memory.data(), memory.size()};
    const auto buffers = reg.register_buffers(std::span(&iov, 1));
    reg.register_files_sparse(4);
    const std::string data = pattern(8192);
    std::memcpy(memory.data(), data.data(), data.size());
    run(d, [](const std::string& p, registered_buffer buf, std::vector<std::byte>& mem) -> task<> {
        file f = co_await file::create(p);
        // Fixed buffer, plain descriptor.
        {
            const std::size_t got = co_await f.write(buf.subspan(0, 4096), 0);
            CHECK(got == 4096);
        }
        // Fixed buffer and fixed file.
        direct_file g = co_await f.register_direct();
        CHECK(g.is_open());
        co_await g.write_all(buf.subspan(4096), 4096);
        std::fill(mem.begin(), mem.end(), std::byte{0});
        co_await g.read_exact(buf, 0);
        {
            const std::size_t got = co_await g.read(std::span(mem).subspan(0, 10), 8190);
            CHECK(got == 2);
        } // plain buffer too
        co_await g.fsync();
        co_await g.close();
        CHECK_FALSE(g.is_open());
    }(path, buffers[0], memory));
    CHECK(std::memcmp(memory.data() + 10, data.data() + 10, data.size() - 10) == 0);
    CHECK(dir.read_file("fixed") == data);
}

TEST_CASE("a direct descriptor opens into the file table, reads, writes and closes") {
    test::temp_dir dir;
    const std::string path = dir.write_file("direct", "direct contents");
    driver d;
    registrar(d.ring()).register_files_sparse(2);
    const caught c = run(d, [](const std::string& p) -> task<caught> {
        direct_file f = co_await file::open_direct(p, O_RDWR);
        CHECK(f.is_open());
        std::string buf(6, '\0');
        co_await f.read_exact(writable_bytes(buf));
        CHECK(buf == "direct");
        {
            const std::size_t got = co_await f.write(bytes_of(std::string("!")), 0);
            CHECK(got == 1);
        }
        if (!test::lacks(opcode::ftruncate)) co_await f.truncate(15);
        // An explicit slot.
        direct_file g = co_await file::open_direct(p, O_RDONLY, 0, 1);
        CHECK(g.slot() == registered_fd{1});
        co_await g.close();
        co_await f.close();
        co_return co_await catch_error([](direct_file& h) -> task<> {
            std::byte b[1];
            (void)co_await h.read(b, 0);
        }(f));
    }(path));
    CHECK(c.errnum == EBADF);
    CHECK(starts_with(c.message, "read " + path));
    CHECK(dir.read_file("direct") == "!irect contents");
}

TEST_CASE("a direct descriptor's destructor frees its slot through the ring") {
    test::temp_dir dir;
    const std::string path = dir.write_file("slot", "s");
    driver d;
    registrar(d.ring()).register_files_sparse(1);
    run(d, [](const std::string& p) -> task<> {
        for (int i = 0; i < 3; ++i) {
            // With one slot, the next open finds it free only if the last one was closed.
            direct_file f = co_await file::open_direct(p);
            CHECK(f.slot() == registered_fd{0});
        }
        // Taken: the table is full now.
        direct_file kept = co_await file::open_direct(p);
        const caught full = co_await catch_error([](const std::string& q) -> task<> {
            direct_file g = co_await file::open_direct(q);
        }(p));
        CHECK(full.errnum == ENFILE);
    }(path));
}

TEST_CASE("opening a direct descriptor without a file table names the path") {
    test::temp_dir dir;
    const std::string path = dir.write_file("x", "x");
    const caught c = run_task(
        [](const std::string& p) -> task<caught> {
            co_return co_await catch_error([](const std::string& q) -> task<> {
                direct_file f = co_await file::open_direct(q);
            }(p));
        },
        path);
    CHECK(c.errnum != 0);
    CHECK(starts_with(c.message, "open " + path + ": "));
}
