// Tests of runtime/include/tram/splice.hpp: splice, tee and copy between files, pipes and
// sockets, byte for byte.
#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/runtime.hpp>

#include "sockets.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using namespace tram;

namespace {

std::span<std::byte> writable_bytes(std::string& s) {
    return std::as_writable_bytes(std::span(s.data(), s.size()));
}

std::string pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
    return s;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

constexpr std::size_t sizes[] = {0, 1, (1 << 20) + 7};

} // namespace

TEST_CASE("copy moves a whole file into another byte for byte") {
    for (const std::size_t size : sizes) {
        DYNAMIC_SECTION("size " << size) {
            test::temp_dir dir;
            const std::string data = pattern(size);
            const std::string from = dir.write_file("from", data);
            driver d;
            const std::uint64_t copied = run(
                d,
                [](const std::string& in_path, const std::string& out_path) -> task<std::uint64_t> {
                    file in = co_await file::open(in_path);
                    file out = co_await file::create(out_path);
                    const std::uint64_t n = co_await copy(in, out.ref());
                    co_await out.close();
                    co_return n;
                }(from, dir / "to"));
            CHECK(copied == size);
            CHECK(dir.read_file("to") == data);
        }
    }
}

TEST_CASE("copy stops at end of file with the count copied, and honours count and offset") {
    test::temp_dir dir;
    const std::string data = pattern(300000);
    const std::string from = dir.write_file("from", data);
    driver d;
    run(d,
        [](const std::string& in_path, const std::string& out_path,
           const std::string& expected) -> task<> {
            file in = co_await file::open(in_path);
            file out = co_await file::create(out_path);
            // Asking for more than there is: the count copied, no error.
            const std::uint64_t all = co_await copy(in, out.ref(), 1 << 30);
            CHECK(all == expected.size());
            // At end of file already (the position moved): nothing.
            const std::uint64_t none = co_await copy(in, out.ref());
            CHECK(none == 0);
            // A part, from an offset (the position stays where it is).
            const std::uint64_t part = co_await copy(in, out.ref(), 1000, 5);
            CHECK(part == 1000);
        }(from, dir / "to", data));
    CHECK(dir.read_file("to") == data + data.substr(5, 1000));
}

TEST_CASE("copy sends a file through a socket while the peer reads it") {
    for (const std::size_t size : sizes) {
        DYNAMIC_SECTION("size " << size) {
            test::temp_dir dir;
            const std::string data = pattern(size);
            const std::string from = dir.write_file("from", data);
            auto pair = test::make_socketpair(SOCK_STREAM);
            driver d;
            file sender = file::adopt(pair.first.release(), "socket");
            file receiver = file::adopt(pair.second.release(), "peer");
            std::string received(size, '\0');
            const auto [sent, ignored] = run(
                d, when_all(
                       [](const std::string& p, file& s) -> task<std::uint64_t> {
                           file in = co_await file::open(p);
                           const std::uint64_t n = co_await copy(in, s.ref());
                           co_await s.close(); // the reader sees end of file after the last byte
                           co_return n;
                       }(from, sender),
                       [](file& r, std::string& into) -> task<> {
                           co_await r.read_exact(writable_bytes(into));
                           std::byte extra[1];
                           const std::size_t more = co_await r.read(extra);
                           CHECK(more == 0);
                       }(receiver, received)));
            CHECK(sent == size);
            CHECK(received == data);
        }
    }
}

TEST_CASE("copy into a closed descriptor throws naming the source path") {
    test::temp_dir dir;
    const std::string from = dir.write_file("from", "data");
    driver d;
    std::string message;
    int errnum = 0;
    run(d, [](const std::string& p, std::string& msg, int& err) -> task<> {
        file in = co_await file::open(p);
        try {
            (void)co_await copy(in, 1000000);
        } catch (const tram::error& e) {
            msg = e.what();
            err = e.errnum();
        }
    }(from, message, errnum));
    CHECK(errnum == EBADF);
    CHECK(starts_with(message, "copy " + from + " -> fd 1000000: "));
}

TEST_CASE("splice moves bytes from a file into a pipe and on into another file") {
    for (const std::size_t size : sizes) {
        DYNAMIC_SECTION("size " << size) {
            test::temp_dir dir;
            const std::string data = pattern(size);
            const std::string from = dir.write_file("from", data);
            auto pipe = test::make_pipe();
            driver d;
            run(d,
                [](const std::string& in_path, const std::string& out_path, int r, int w,
                   std::size_t total) -> task<> {
                    file in = co_await file::open(in_path);
                    file out = co_await file::create(out_path);
                    std::size_t done = 0;
                    while (done < total) {
                        const std::size_t n = co_await splice(
                            in.ref(), static_cast<std::int64_t>(done), w, no_offset, 65536);
                        REQUIRE(n > 0);
                        std::size_t left = n;
                        while (left > 0)
                            left -= co_await splice(r, out.ref(), static_cast<std::uint32_t>(left));
                        done += n;
                    }
                    // At end of file, splice gives 0.
                    const std::size_t at_end = co_await splice(
                        in.ref(), static_cast<std::int64_t>(total), w, no_offset, 10);
                    CHECK(at_end == 0);
                }(from, dir / "to", pipe.first.get(), pipe.second.get(), size));
            CHECK(dir.read_file("to") == data);
        }
    }
}

TEST_CASE("tee duplicates pipe contents without consuming them") {
    for (const std::size_t size : sizes) {
        DYNAMIC_SECTION("size " << size) {
            test::temp_dir dir;
            const std::string data = pattern(size);
            const std::string from = dir.write_file("from", data);
            auto source = test::make_pipe();
            auto copy_pipe = test::make_pipe();
            driver d;
            const std::string teed = run(
                d,
                [](const std::string& in_path, const std::string& out_path, int src_r, int src_w,
                   int dup_r, int dup_w, std::size_t total) -> task<std::string> {
                    file in = co_await file::open(in_path);
                    file out = co_await file::create(out_path);
                    file duplicate = file::adopt(::dup(dup_r), "duplicate pipe");
                    std::string seen;
                    std::size_t done = 0;
                    while (done < total) {
                        const std::size_t n = co_await splice(in.ref(), src_w, 65536);
                        REQUIRE(n > 0);
                        // tee it all (a tee may be short), then read the duplicate.
                        std::size_t duplicated = 0;
                        while (duplicated < n) {
                            const std::size_t t = co_await tee(
                                src_r, dup_w, static_cast<std::uint32_t>(n - duplicated));
                            REQUIRE(t > 0);
                            std::string chunk(t, '\0');
                            co_await duplicate.read_exact(writable_bytes(chunk));
                            seen += chunk;
                            duplicated += t;
                            // tee does not consume: move what was duplicated out of the source.
                            std::size_t left = t;
                            while (left > 0)
                                left -= co_await splice(src_r, out.ref(),
                                                        static_cast<std::uint32_t>(left));
                        }
                        done += n;
                    }
                    const std::size_t zero = co_await tee(src_r, dup_w, 0);
                    CHECK(zero == 0);
                    co_return seen;
                }(from, dir / "to", source.first.get(), source.second.get(), copy_pipe.first.get(),
                                                            copy_pipe.second.get(), size));
            CHECK(teed == data);
            CHECK(dir.read_file("to") == data);
        }
    }
}

TEST_CASE("splice between two regular files is refused, naming both descriptors") {
    test::temp_dir dir;
    const std::string a = dir.write_file("a", "a");
    driver d;
    std::string message;
    run(d, [](const std::string& p, std::string& msg) -> task<> {
        file in = co_await file::open(p);
        file out = co_await file::open(p, O_RDWR);
        try {
            (void)co_await splice(in.ref(), 0, out.ref(), 0, 1);
        } catch (const tram::error& e) {
            msg = e.what();
            CHECK(e.errnum() == EINVAL);
        }
        CHECK(starts_with(msg, "splice fd " + std::to_string(in.fd()) + " -> fd " +
                                   std::to_string(out.fd()) + ": "));
    }(a, message));
    CHECK_FALSE(message.empty());
}

TEST_CASE("copy works from a direct descriptor") {
    test::temp_dir dir;
    const std::string data = pattern(100003);
    const std::string from = dir.write_file("from", data);
    driver d;
    registrar(d.ring()).register_files_sparse(2);
    run(d, [](const std::string& in_path, const std::string& out_path) -> task<> {
        direct_file in = co_await file::open_direct(in_path);
        direct_file out = co_await file::open_direct(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const std::uint64_t n = co_await copy(in, out.slot());
        CHECK(n == 100003);
        co_await out.close();
    }(from, dir / "to"));
    CHECK(dir.read_file("to") == data);
}
