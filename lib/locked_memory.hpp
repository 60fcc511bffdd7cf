// What to say when a registration that pins memory fails with ENOMEM (registered buffers,
// provided-buffer rings): without CAP_IPC_LOCK the kernel charges pinned pages to the user's
// RLIMIT_MEMLOCK, shared by all of that user's rings, and answers a bare ENOMEM when it is
// spent. Private to the ring layer.
#pragma once

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace tram::detail {

[[nodiscard]] inline std::string kib(std::uint64_t bytes) {
    return std::to_string((bytes + 1023) / 1024) + " KiB";
}

[[nodiscard]] inline bool has_ipc_lock() noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return false;
    return (data[CAP_IPC_LOCK / 32].effective & (1U << (CAP_IPC_LOCK % 32))) != 0;
}

/// "WHAT (N KiB to pin): not enough locked memory (RLIMIT_MEMLOCK is M KiB ...)", or out of
/// memory where the limit does not apply (CAP_IPC_LOCK, or no limit).
[[nodiscard]] inline std::string pinning_failure(const std::string& what, std::uint64_t bytes) {
    const std::string asked = what + " (" + kib(bytes) + " to pin)";
    if (has_ipc_lock()) {
        return asked + ": the kernel is out of memory (with CAP_IPC_LOCK, RLIMIT_MEMLOCK does "
                       "not apply)";
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_MEMLOCK, &lim);
    if (lim.rlim_cur == RLIM_INFINITY) return asked + ": the kernel is out of memory";
    return asked + ": not enough locked memory (RLIMIT_MEMLOCK is " + kib(lim.rlim_cur) +
           " for all of this user's pinned memory; raise it with ulimit -l or LimitMEMLOCK=, "
           "or grant CAP_IPC_LOCK)";
}

} // namespace tram::detail
