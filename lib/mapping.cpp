#include <tram/error.hpp>
#include <tram/mapping.hpp>

#include <sys/mman.h>

#include <cerrno>

namespace tram {

mapping mapping::map_shared(int fd, std::size_t size, unsigned long long offset, const char* what) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                     static_cast<off_t>(offset));
    if (p == MAP_FAILED) throw_error(errno, "mmap", what);
    return {p, size};
}

mapping mapping::map_anonymous(std::size_t size, const char* what) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_error(errno, "mmap", what);
    return {p, size};
}

void mapping::reset() noexcept {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
}

} // namespace tram
