#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tram::test {

temp_dir::temp_dir() {
    char templ[] = "/tmp/tram-test-XXXXXX";
    if (::mkdtemp(templ) == nullptr) {
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    }
    path_ = templ;
    fd_.reset(::open(templ, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) throw std::runtime_error(std::string("open temp dir: ") + std::strerror(errno));
}

temp_dir::~temp_dir() {
    fd_.reset();
    // Depth first, without following symlinks, so that the tree goes and nothing outside it.
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, FTW*) { return ::remove(p) == 0 ? 0 : 0; }, 16,
        FTW_DEPTH | FTW_PHYS);
}

std::string temp_dir::write_file(const std::string& name, const std::string& contents) const {
    const std::string p = *this / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << contents;
    REQUIRE(out.good());
    return p;
}

std::string temp_dir::read_file(const std::string& name) const {
    std::ifstream in(*this / name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace tram::test
