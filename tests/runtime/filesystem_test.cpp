// Tests of runtime/include/tram/filesystem.hpp: real directories under /tmp.
#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include "skip.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <string>

using namespace tram;

namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

/// tram::error's what() is the message followed by ": " and the errno's text.
bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

struct caught {
    int errnum = 0;
    std::string message;
};

/// The errno and message of the tram::error that awaiting `op` throws.
template <typename Op>
caught error_of(Op op) {
    driver d;
    return run(d, [](Op o) -> task<caught> {
        try {
            co_await std::move(o);
        } catch (const tram::error& e) {
            co_return caught{e.errnum(), e.what()};
        }
        co_return caught{};
    }(std::move(op)));
}

template <typename Op>
auto await_one(Op op) {
    driver d;
    return run(d, [](Op o) -> task<decltype(std::declval<Op&>().await_resume())> {
        co_return co_await std::move(o);
    }(std::move(op)));
}

} // namespace

TEST_CASE("mkdir creates a directory with its mode, and rmdir removes it") {
    test::temp_dir dir;
    const std::string path = dir / "sub";
    await_one(fs::mkdir(path, 0750));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == (0750 & ~[] {
              const mode_t mask = ::umask(0);
              ::umask(mask);
              return mask;
          }()));
    await_one(fs::rmdir(path));
    CHECK_FALSE(exists(path));
}

TEST_CASE("mkdir of an existing path throws EEXIST naming it") {
    test::temp_dir dir;
    const caught c = error_of(fs::mkdir(dir.path()));
    CHECK(c.errnum == EEXIST);
    CHECK(starts_with(c.message, "mkdir " + dir.path() + ": File exists (EEXIST)"));
}

TEST_CASE("rename moves a file, and renaming a missing one names both paths") {
    test::temp_dir dir;
    dir.write_file("a", "contents");
    await_one(fs::rename(dir / "a", dir / "b"));
    CHECK_FALSE(exists(dir / "a"));
    CHECK(dir.read_file("b") == "contents");

    const caught c = error_of(fs::rename(dir / "a", dir / "c"));
    CHECK(c.errnum == ENOENT);
    CHECK(starts_with(c.message, "rename " + (dir / "a") + " -> " + (dir / "c") + ": "));
}

TEST_CASE("rename with RENAME_NOREPLACE refuses to replace an existing file") {
    test::temp_dir dir;
    dir.write_file("a", "a");
    dir.write_file("b", "b");
    const caught c = error_of(fs::rename("a", "b", dir.fd(), RENAME_NOREPLACE));
    CHECK(c.errnum == EEXIST);
    CHECK(dir.read_file("b") == "b");
}

TEST_CASE("unlink removes a file, and unlinking a missing one throws ENOENT naming it") {
    test::temp_dir dir;
    dir.write_file("gone", "x");
    await_one(fs::unlink(dir / "gone"));
    CHECK_FALSE(exists(dir / "gone"));
    const caught c = error_of(fs::unlink(dir / "gone"));
    CHECK(c.errnum == ENOENT);
    CHECK(starts_with(c.message, "unlink " + (dir / "gone") + ": No such file or directory"));
}

TEST_CASE("every path operation works relative to a directory descriptor") {
    test::temp_dir dir;
    const int at = dir.fd();
    driver d;
    run(d, [](int fd) -> task<> {
        co_await fs::mkdir("d", 0700, fd);
        {
            file f = co_await file::create("d/f", 0600, fd);
            co_await f.write_all(std::as_bytes(std::span("data", 4)));
        }
        co_await fs::rename("d/f", "d/g", fd);
        co_await fs::link("d/g", "h", fd);
        co_await fs::symlink("d/g", "s", fd);
        const file_status st = co_await fs::stat("s", fd);
        CHECK(st.size() == 4);
        const file_status link_itself = co_await fs::stat("s", fd, AT_SYMLINK_NOFOLLOW);
        CHECK(link_itself.is_symlink());
        co_await fs::unlink("d/g", fd);
        co_await fs::rmdir("d", fd);
    }(at));
    CHECK(dir.read_file("h") == "data");
    CHECK_FALSE(exists(dir / "d"));
}

TEST_CASE("link makes a second name for the same inode") {
    test::temp_dir dir;
    dir.write_file("one", "shared");
    await_one(fs::link(dir / "one", dir / "two"));
    struct stat a {
    }, b{};
    REQUIRE(::stat((dir / "one").c_str(), &a) == 0);
    REQUIRE(::stat((dir / "two").c_str(), &b) == 0);
    CHECK(a.st_ino == b.st_ino);
    CHECK(a.st_nlink == 2);
    const caught c = error_of(fs::link(dir / "one", dir / "two"));
    CHECK(c.errnum == EEXIST);
    CHECK(starts_with(c.message, "link " + (dir / "one") + " -> " + (dir / "two") + ": "));
}

TEST_CASE("symlink stores its target as given") {
    test::temp_dir dir;
    await_one(fs::symlink("no/such/target", dir / "link"));
    char buf[64] = {};
    const ssize_t n = ::readlink((dir / "link").c_str(), buf, sizeof buf);
    CHECK(std::string(buf, static_cast<std::size_t>(n)) == "no/such/target");
    const caught c = error_of(fs::symlink("x", dir / "link"));
    CHECK(c.errnum == EEXIST);
    CHECK(starts_with(c.message, "symlink " + (dir / "link") + " -> x: "));
}

TEST_CASE("stat of a path agrees with stat(2), and of a missing path names it") {
    test::temp_dir dir;
    const std::string path = dir.write_file("f", "12345");
    const file_status st = await_one(fs::stat(path));
    struct stat ref {};
    REQUIRE(::stat(path.c_str(), &ref) == 0);
    CHECK(st.size() == 5);
    CHECK(st.inode() == ref.st_ino);
    CHECK(st.mode() == ref.st_mode);
    CHECK(await_one(fs::stat(dir.path())).is_directory());
    const caught c = error_of(fs::stat(dir / "missing"));
    CHECK(c.errnum == ENOENT);
    CHECK(starts_with(c.message, "statx " + (dir / "missing") + ": "));
}

TEST_CASE("extended attributes set and read back by path and by descriptor") {
    test::temp_dir dir;
    const std::string path = dir.write_file("x", "x");
    if (::setxattr(path.c_str(), "user.probe", "1", 1, 0) != 0) {
        if (errno == EOPNOTSUPP || errno == ENOTSUP) {
            test::skip("the file system of /tmp refuses user extended attributes");
            return;
        }
        FAIL("setxattr(2): " << std::strerror(errno));
    }
    driver d;
    run(d, [](const std::string& p) -> task<> {
        const std::string value = "by path";
        co_await fs::setxattr(p, "user.tram", value);
        std::string back(32, '\0');
        const std::size_t n = co_await fs::getxattr(p, "user.tram", back);
        CHECK(back.substr(0, n) == value);

        file f = co_await file::open(p, O_RDWR);
        const std::string other = "by fd";
        co_await f.setxattr("user.other", other, XATTR_CREATE);
        const std::size_t m = co_await f.getxattr("user.tram", back);
        CHECK(back.substr(0, m) == value);
        const std::size_t k = co_await fs::fgetxattr(f.fd(), "user.other", back);
        CHECK(back.substr(0, k) == other);
        co_await fs::fsetxattr(f.fd(), "user.other", value, XATTR_REPLACE);
        const std::size_t replaced = co_await fs::getxattr(p, "user.other", back);
        CHECK(back.substr(0, replaced) == value);
    }(path));

    const caught missing = error_of(fs::getxattr(path, "user.none", std::span<char>()));
    CHECK(missing.errnum == ENODATA);
    CHECK(starts_with(missing.message, "getxattr " + path + " user.none: "));
    const caught exists_already =
        error_of(fs::setxattr(path, "user.tram", std::span<const char>("v", 1), XATTR_CREATE));
    CHECK(exists_already.errnum == EEXIST);
    CHECK(starts_with(exists_already.message, "setxattr " + path + " user.tram: "));
}
