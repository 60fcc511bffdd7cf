#include <tram/error.hpp>
#include <tram/registrar.hpp>
#include <tram/ring.hpp>

#include "locked_memory.hpp"

#include <array>
#include <numeric>
#include <string>

namespace tram {
namespace {

std::string registration_detail(int err, const char* what) {
    // Only buffer registrations pin memory (register_pinned); tables are plain kernel memory.
    if (err == ENOMEM) return std::string(what) + ": the kernel is out of memory";
    if (err == EBUSY) return std::string(what) + ": a table of this kind is already registered";
    if (err == EEXIST) {
        return std::string(what) + ": already registered, or called from a "
                                   "thread other than the ring's submitter with SINGLE_ISSUER";
    }
    return std::string(what);
}

// A registration that pins `bytes` of memory: ENOMEM says which limit and how much.
int register_pinned(ring& r, unsigned opcode, const void* arg, unsigned nr_args, const char* what,
                    std::uint64_t bytes) {
    const int ret = r.register_raw(opcode, arg, nr_args);
    if (ret == -ENOMEM)
        throw_error(ENOMEM, "io_uring_register", detail::pinning_failure(what, bytes));
    if (ret < 0) throw_error(-ret, "io_uring_register", registration_detail(-ret, what));
    return ret;
}

} // namespace

int registrar::call(unsigned opcode, const void* arg, unsigned nr_args, const char* what) {
    const int r = ring_->register_raw(opcode, arg, nr_args);
    if (r < 0) throw_error(-r, "io_uring_register", registration_detail(-r, what));
    return r;
}

std::vector<registered_buffer> registrar::register_buffers(std::span<const iovec> buffers) {
    const std::uint64_t bytes =
        std::accumulate(buffers.begin(), buffers.end(), std::uint64_t{0},
                        [](std::uint64_t sum, const iovec& b) { return sum + b.iov_len; });
    register_pinned(*ring_, IORING_REGISTER_BUFFERS, buffers.data(),
                    static_cast<unsigned>(buffers.size()), "registering buffers", bytes);
    std::vector<registered_buffer> handles;
    handles.reserve(buffers.size());
    for (std::size_t i = 0; i < buffers.size(); ++i) {
        handles.emplace_back(
            static_cast<std::uint16_t>(i),
            std::span(static_cast<std::byte*>(buffers[i].iov_base), buffers[i].iov_len));
    }
    return handles;
}

void registrar::register_buffers_sparse(unsigned count) {
    io_uring_rsrc_register reg{};
    reg.nr = count;
    reg.flags = IORING_RSRC_REGISTER_SPARSE;
    call(IORING_REGISTER_BUFFERS2, &reg, sizeof(reg), "registering a sparse buffer table");
}

registered_buffer registrar::update_buffer(std::uint16_t index, std::span<std::byte> memory) {
    iovec iov{memory.data(), memory.size()};
    io_uring_rsrc_update2 up{};
    up.offset = index;
    up.data = reinterpret_cast<std::uintptr_t>(&iov);
    up.nr = 1;
    register_pinned(*ring_, IORING_REGISTER_BUFFERS_UPDATE, &up, sizeof(up),
                    "updating a registered buffer", memory.size());
    return {index, memory};
}

void registrar::unregister_buffers() {
    call(IORING_UNREGISTER_BUFFERS, nullptr, 0, "unregistering buffers");
}

std::vector<registered_fd> registrar::register_files(std::span<const int> fds) {
    call(IORING_REGISTER_FILES, fds.data(), static_cast<unsigned>(fds.size()), "registering files");
    std::vector<registered_fd> handles(fds.size());
    for (unsigned i = 0; i < handles.size(); ++i)
        handles[i].index = i;
    return handles;
}

void registrar::register_files_sparse(unsigned count) {
    io_uring_rsrc_register reg{};
    reg.nr = count;
    reg.flags = IORING_RSRC_REGISTER_SPARSE;
    call(IORING_REGISTER_FILES2, &reg, sizeof(reg), "registering a sparse file table");
}

void registrar::update_files(unsigned offset, std::span<const int> fds) {
    io_uring_files_update up{};
    up.offset = offset;
    up.fds = reinterpret_cast<std::uintptr_t>(fds.data());
    call(IORING_REGISTER_FILES_UPDATE, &up, static_cast<unsigned>(fds.size()),
         "updating registered files");
}

void registrar::set_file_alloc_range(unsigned offset, unsigned count) {
    io_uring_file_index_range range{};
    range.off = offset;
    range.len = count;
    call(IORING_REGISTER_FILE_ALLOC_RANGE, &range, 0, "setting the file allocation range");
}

void registrar::unregister_files() {
    call(IORING_UNREGISTER_FILES, nullptr, 0, "unregistering files");
}

void registrar::register_eventfd(int eventfd) {
    call(IORING_REGISTER_EVENTFD, &eventfd, 1, "registering an eventfd");
}

void registrar::register_eventfd_async(int eventfd) {
    call(IORING_REGISTER_EVENTFD_ASYNC, &eventfd, 1, "registering an async-only eventfd");
}

void registrar::unregister_eventfd() {
    call(IORING_UNREGISTER_EVENTFD, nullptr, 0, "unregistering the eventfd");
}

std::uint16_t registrar::register_personality() {
    return static_cast<std::uint16_t>(
        call(IORING_REGISTER_PERSONALITY, nullptr, 0, "registering a personality"));
}

void registrar::unregister_personality(std::uint16_t id) {
    call(IORING_UNREGISTER_PERSONALITY, nullptr, id, "unregistering a personality");
}

std::pair<unsigned, unsigned> registrar::set_iowq_max_workers(unsigned bounded,
                                                              unsigned unbounded) {
    std::array<unsigned, 2> values{bounded, unbounded};
    call(IORING_REGISTER_IOWQ_MAX_WORKERS, values.data(), 2, "setting io-wq worker limits");
    return {values[0], values[1]};
}

void registrar::set_iowq_affinity(const cpu_set_t& cpus) {
    call(IORING_REGISTER_IOWQ_AFF, &cpus, sizeof(cpus), "setting io-wq affinity");
}

void registrar::clear_iowq_affinity() {
    call(IORING_UNREGISTER_IOWQ_AFF, nullptr, 0, "clearing io-wq affinity");
}

} // namespace tram
