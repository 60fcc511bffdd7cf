// A temporary directory under /tmp, removed with everything in it when the test ends.
#pragma once

#include <tram/unique_fd.hpp>

#include <string>

namespace tram::test {

/// mkdtemp(3) under /tmp; the destructor removes the tree. `fd()` is an O_PATH-free directory
/// descriptor for the *at ops.
class temp_dir {
public:
    temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir();

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    /// `path()/name`.
    [[nodiscard]] std::string operator/(const std::string& name) const {
        return path_ + '/' + name;
    }

    /// Creates (or truncates) file `name` holding `contents`; returns its path.
    std::string write_file(const std::string& name, const std::string& contents) const;
    /// The whole contents of file `name`.
    [[nodiscard]] std::string read_file(const std::string& name) const;

private:
    std::string path_;
    unique_fd fd_;
};

} // namespace tram::test
