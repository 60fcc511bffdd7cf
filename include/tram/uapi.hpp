// The kernel's io_uring UAPI, plus the constants of kernels newer than the installed headers.
//
// Debian 12 ships the 6.1 UAPI headers while the kernels tram runs on are often much newer.
// Constants the installed header lacks are defined here under tram's own names; where the
// header does define them, a static_assert proves that both agree. Whether the running kernel
// understands them is for the probe and the setup features to decide at run time.
#pragma once

#include <linux/io_uring.h>

#include <cstdint>

namespace tram::uapi {

// io_uring_setup(2) flags newer than 6.1.
inline constexpr std::uint32_t setup_no_mmap = 1U << 14;            // 6.5
inline constexpr std::uint32_t setup_registered_fd_only = 1U << 15; // 6.5
inline constexpr std::uint32_t setup_no_sqarray = 1U << 16;         // 6.6
inline constexpr std::uint32_t setup_hybrid_iopoll = 1U << 17;      // 6.13

// io_uring_params::features newer than 6.1.
inline constexpr std::uint32_t feat_reg_reg_ring = 1U << 13;    // 6.3
inline constexpr std::uint32_t feat_recvsend_bundle = 1U << 14; // 6.10
inline constexpr std::uint32_t feat_min_timeout = 1U << 15;     // 6.12
inline constexpr std::uint32_t feat_rw_attr = 1U << 16;         // 6.14
inline constexpr std::uint32_t feat_no_iowait = 1U << 17;       // 6.15

// io_uring_enter(2) flags newer than 6.1.
inline constexpr std::uint32_t enter_abs_timer = 1U << 5;   // 6.12
inline constexpr std::uint32_t enter_ext_arg_reg = 1U << 6; // 6.13
inline constexpr std::uint32_t enter_no_iowait = 1U << 7;   // 6.15

// io_uring_getevents_arg (IORING_ENTER_EXT_ARG) as of 6.12, which named the 6.1 header's
// `pad` min_wait_usec: with IORING_FEAT_MIN_TIMEOUT, a wait for several completions returns
// once that time has passed if at least one is there.
struct getevents_arg {
    std::uint64_t sigmask;
    std::uint32_t sigmask_sz;
    std::uint32_t min_wait_usec;
    std::uint64_t ts;
};
static_assert(sizeof(getevents_arg) == sizeof(io_uring_getevents_arg));

// CQE flags newer than 6.1.
inline constexpr std::uint32_t cqe_f_buf_more = 1U << 4; // 6.12, incremental buffer rings

// SQE op flags newer than 6.1.
inline constexpr std::uint32_t timeout_multishot = 1U << 6;   // 6.4
inline constexpr std::uint32_t msg_ring_flags_pass = 1U << 1; // 6.3
inline constexpr std::uint32_t recvsend_bundle = 1U << 4;     // 6.10
inline constexpr std::uint32_t accept_dontwait = 1U << 1;     // 6.10
inline constexpr std::uint32_t accept_poll_first = 1U << 2;   // 6.10
inline constexpr std::uint32_t fixed_fd_no_cloexec = 1U << 0; // 6.8
inline constexpr std::uint32_t nop_inject_result = 1U << 0;   // 6.12
inline constexpr std::uint32_t nop_cqe32 = 1U << 5;           // 6.18: off and addr to extra

// io_uring_register(2) opcodes newer than 6.1.
inline constexpr unsigned register_pbuf_status = 26;   // 6.8
inline constexpr unsigned register_napi = 27;          // 6.9
inline constexpr unsigned unregister_napi = 28;        // 6.9
inline constexpr unsigned register_clock = 29;         // 6.12
inline constexpr unsigned register_clone_buffers = 30; // 6.12
inline constexpr unsigned register_resize_rings = 33;  // 6.13
inline constexpr unsigned register_use_registered_ring = 1U << 31;

// Provided-buffer ring registration flags.
inline constexpr std::uint16_t pbuf_ring_mmap = 1; // 6.4: the kernel allocates the ring
inline constexpr std::uint16_t pbuf_ring_inc = 2;  // 6.12: incremental consumption
inline constexpr std::uint64_t off_pbuf_ring = 0x80000000ULL;
inline constexpr unsigned off_pbuf_shift = 16;

// futex2 flags for FUTEX_WAIT/WAKE/WAITV (linux/futex.h, 6.7).
inline constexpr std::uint32_t futex2_size_u32 = 0x02;
inline constexpr std::uint32_t futex2_private = 128;
inline constexpr std::uint64_t futex_bitset_match_any = 0xffffffffU;

#ifdef IORING_SETUP_NO_SQARRAY
static_assert(setup_no_sqarray == IORING_SETUP_NO_SQARRAY);
static_assert(setup_no_mmap == IORING_SETUP_NO_MMAP);
#endif
#ifdef IORING_FEAT_REG_REG_RING
static_assert(feat_reg_reg_ring == IORING_FEAT_REG_REG_RING);
#endif
#ifdef IORING_TIMEOUT_MULTISHOT
static_assert(timeout_multishot == IORING_TIMEOUT_MULTISHOT);
#endif
#ifdef IORING_MSG_RING_FLAGS_PASS
static_assert(msg_ring_flags_pass == IORING_MSG_RING_FLAGS_PASS);
#endif
#ifdef IORING_RECVSEND_BUNDLE
static_assert(recvsend_bundle == IORING_RECVSEND_BUNDLE);
#endif
#ifdef IORING_FIXED_FD_NO_CLOEXEC
static_assert(fixed_fd_no_cloexec == IORING_FIXED_FD_NO_CLOEXEC);
#endif

} // namespace tram::uapi
