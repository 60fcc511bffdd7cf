// Registering buffers, files and other resources with a ring (io_uring_register(2)).
#pragma once

#include <tram/registered.hpp>

#include <sched.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace tram {

class ring;

/// Registers resources with a ring and hands back typed handles for them. Every call throws
/// tram::error naming the registration and the cause (ENOMEM for RLIMIT_MEMLOCK, EBUSY for a
/// table that is already registered, ...). With SINGLE_ISSUER, call only from the ring's
/// submitter thread.
class registrar {
public:
    explicit registrar(ring& r) noexcept : ring_(&r) {}

    // ---- Buffers -------------------------------------------------------------------------
    /// Registers buffers (pinning their pages); handle i is buffers[i].
    [[nodiscard]] std::vector<registered_buffer> register_buffers(std::span<const iovec> buffers);
    /// Registers an empty table of `count` buffer slots, filled later by `update_buffer` (5.13).
    void register_buffers_sparse(unsigned count);
    /// Puts `memory` into slot `index` of a (sparse) buffer table.
    [[nodiscard]] registered_buffer update_buffer(std::uint16_t index, std::span<std::byte> memory);
    void unregister_buffers();

    // ---- Files ---------------------------------------------------------------------------
    /// Registers descriptors; handle i is fds[i]. -1 leaves a slot empty.
    [[nodiscard]] std::vector<registered_fd> register_files(std::span<const int> fds);
    /// Registers an empty table of `count` file slots (5.13), for direct descriptors.
    void register_files_sparse(unsigned count);
    /// Replaces slots from `offset` on with `fds` (-1 empties a slot).
    void update_files(unsigned offset, std::span<const int> fds);
    /// The slots the kernel may pick for `alloc_file_index` (6.0).
    void set_file_alloc_range(unsigned offset, unsigned count);
    void unregister_files();

    // ---- Notifications and credentials ----------------------------------------------------
    /// Signals `eventfd` for every completion posted.
    void register_eventfd(int eventfd);
    /// Signals `eventfd` only for completions of ops that went async.
    void register_eventfd_async(int eventfd);
    void unregister_eventfd();
    /// Registers the calling thread's credentials; returns the id for `set_personality`.
    [[nodiscard]] std::uint16_t register_personality();
    void unregister_personality(std::uint16_t id);

    // ---- The async worker pool (io-wq) ------------------------------------------------------
    /// Caps the bounded (file I/O) and unbounded (socket, ...) workers; 0 leaves a cap as it
    /// is. Returns the caps that were in force before.
    std::pair<unsigned, unsigned> set_iowq_max_workers(unsigned bounded, unsigned unbounded);
    /// Pins the ring's async workers to `cpus`.
    void set_iowq_affinity(const cpu_set_t& cpus);
    void clear_iowq_affinity();

private:
    int call(unsigned opcode, const void* arg, unsigned nr_args, const char* what);
    ring* ring_;
};

} // namespace tram
