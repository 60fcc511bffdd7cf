// What a ring is set up with (io_uring_setup(2) flags and parameters) and what the kernel
// answers with (features).
#pragma once

#include <tram/flag_set.hpp>
#include <tram/uapi.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace tram {

/// A flag of io_uring_setup(2). Flags newer than the running kernel make setup fail with
/// EINVAL; `ring` reports that by name.
enum class setup_flag : std::uint32_t {
    iopoll = IORING_SETUP_IOPOLL,
    sqpoll = IORING_SETUP_SQPOLL,
    sq_aff = IORING_SETUP_SQ_AFF,
    cqsize = IORING_SETUP_CQSIZE,
    clamp = IORING_SETUP_CLAMP,
    attach_wq = IORING_SETUP_ATTACH_WQ,
    r_disabled = IORING_SETUP_R_DISABLED,
    submit_all = IORING_SETUP_SUBMIT_ALL,
    coop_taskrun = IORING_SETUP_COOP_TASKRUN,
    taskrun_flag = IORING_SETUP_TASKRUN_FLAG,
    sqe128 = IORING_SETUP_SQE128,
    cqe32 = IORING_SETUP_CQE32,
    single_issuer = IORING_SETUP_SINGLE_ISSUER,
    defer_taskrun = IORING_SETUP_DEFER_TASKRUN,
    no_mmap = uapi::setup_no_mmap,
    registered_fd_only = uapi::setup_registered_fd_only,
    no_sqarray = uapi::setup_no_sqarray,
    hybrid_iopoll = uapi::setup_hybrid_iopoll,
};
template <>
inline constexpr bool is_flag_enum<setup_flag> = true;
using setup_flags = flag_set<setup_flag>;

/// A feature the kernel reports in io_uring_params::features.
enum class feature : std::uint32_t {
    single_mmap = IORING_FEAT_SINGLE_MMAP,
    nodrop = IORING_FEAT_NODROP,
    submit_stable = IORING_FEAT_SUBMIT_STABLE,
    rw_cur_pos = IORING_FEAT_RW_CUR_POS,
    cur_personality = IORING_FEAT_CUR_PERSONALITY,
    fast_poll = IORING_FEAT_FAST_POLL,
    poll_32bits = IORING_FEAT_POLL_32BITS,
    sqpoll_nonfixed = IORING_FEAT_SQPOLL_NONFIXED,
    ext_arg = IORING_FEAT_EXT_ARG,
    native_workers = IORING_FEAT_NATIVE_WORKERS,
    rsrc_tags = IORING_FEAT_RSRC_TAGS,
    cqe_skip = IORING_FEAT_CQE_SKIP,
    linked_file = IORING_FEAT_LINKED_FILE,
    reg_reg_ring = uapi::feat_reg_reg_ring,
    recvsend_bundle = uapi::feat_recvsend_bundle,
    min_timeout = uapi::feat_min_timeout,
    rw_attr = uapi::feat_rw_attr,
    no_iowait = uapi::feat_no_iowait,
};
template <>
inline constexpr bool is_flag_enum<feature> = true;
using features = flag_set<feature>;

/// Names of the flags in a set, comma-separated ("sqpoll, cqsize"), for messages and demos.
[[nodiscard]] std::string to_string(setup_flags flags);
[[nodiscard]] std::string to_string(features feats);

/// Everything io_uring_setup(2) takes. Setting an optional member also sets its flag
/// (cq_entries sets CQSIZE, sq_thread_cpu sets SQ_AFF, attach_wq_fd sets ATTACH_WQ).
struct ring_options {
    /// SQ size; the kernel rounds it up to a power of two (at most 32768, or clamped).
    unsigned entries = 256;
    setup_flags flags{};
    /// CQ size (default: twice the SQ size).
    std::optional<unsigned> cq_entries{};
    /// SQPOLL: the CPU the poller thread is pinned to.
    std::optional<unsigned> sq_thread_cpu{};
    /// SQPOLL: how long the poller spins without work before it sleeps.
    std::optional<std::chrono::milliseconds> sq_thread_idle{};
    /// Share the async worker pool of the ring with this fd.
    std::optional<int> attach_wq_fd{};
    /// Register the ring fd in its own table after setup, so that io_uring_enter(2) skips the
    /// fd lookup (5.18+). Ignored silently where the kernel lacks it.
    bool register_ring_fd = true;
};

} // namespace tram
