#include <tram/unique_fd.hpp>

#include <unistd.h>

namespace tram {

void unique_fd::reset(int fd) noexcept {
    // close(2) releases the descriptor even when it reports EINTR, so it is never retried.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

} // namespace tram
