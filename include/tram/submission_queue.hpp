// The submission queue: the mapped SQ ring and SQE array, seen from the application side.
#pragma once

#include <tram/sqe.hpp>

#include <atomic>
#include <cstdint>
#include <iterator>
#include <optional>

namespace tram {

class submission_queue;

/// How the SQEs of an `sqe_range` are chained.
enum class link_kind {
    /// IOSQE_IO_LINK: a failing op (or a short read/write) cancels the rest of the chain
    /// with -ECANCELED.
    soft,
    /// IOSQE_IO_HARDLINK: the next op starts whatever the result of the previous one.
    hard,
};

/// N consecutive SQEs reserved in one go; they are submitted in order, together.
class sqe_range {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = io_uring_sqe;
        using difference_type = std::ptrdiff_t;
        using reference = io_uring_sqe&;
        using pointer = io_uring_sqe*;

        iterator() = default;
        reference operator*() const noexcept { return (*range_)[index_]; }
        pointer operator->() const noexcept { return &(*range_)[index_]; }
        iterator& operator++() noexcept { return ++index_, *this; }
        iterator operator++(int) noexcept { auto old = *this; ++index_; return old; }
        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.index_ == b.index_;
        }

    private:
        friend class sqe_range;
        iterator(const sqe_range* r, unsigned i) noexcept : range_(r), index_(i) {}
        const sqe_range* range_ = nullptr;
        unsigned index_ = 0;
    };

    [[nodiscard]] unsigned size() const noexcept { return count_; }
    /// The i-th SQE of the range, in submission order.
    [[nodiscard]] io_uring_sqe& operator[](unsigned i) const noexcept;
    [[nodiscard]] iterator begin() const noexcept { return {this, 0}; }
    [[nodiscard]] iterator end() const noexcept { return {this, count_}; }

    /// Chains the SQEs in order: every one but the last gets the link flag, the last gets none
    /// (which ends the chain). Call after preparing them, since `prep_*` resets the flags.
    void link(link_kind kind = link_kind::soft) const noexcept;

private:
    friend class submission_queue;
    sqe_range(const submission_queue* sq, unsigned first, unsigned count) noexcept
        : sq_(sq), first_(first), count_(count) {}
    const submission_queue* sq_;
    unsigned first_;
    unsigned count_;
};

/// The application's side of the SQ ring. SQEs taken here are "prepared": the kernel sees
/// them once `ring::submit` (or one of its relatives) publishes the new tail.
///
/// Memory ordering. The SQ tail is ours and the head the kernel's. We store the tail with
/// release semantics so that the SQE contents written before it are visible to the kernel
/// when it loads the tail (with acquire). We load the head with acquire, because the kernel
/// stores it with release once it has copied the SQEs out: only then may a slot be reused.
/// With SQPOLL, the check of NEED_WAKEUP after publishing the tail needs a full fence: the
/// poller sets the flag and then re-checks the tail, we store the tail and then check the
/// flag, and without the fence on both sides each could miss the other's store.
class submission_queue {
public:
    submission_queue() = default;
    submission_queue(const submission_queue&) = delete;
    submission_queue& operator=(const submission_queue&) = delete;

    /// A free SQE, or nullptr when the queue is full (submit, then try again).
    [[nodiscard]] io_uring_sqe* get_sqe() noexcept {
        if (sqe_tail_ - load_head() >= entries_) return nullptr;
        return &at(sqe_tail_++);
    }
    /// `count` consecutive SQEs, or nothing (and no SQE taken) when fewer are free.
    [[nodiscard]] std::optional<sqe_range> reserve(unsigned count) noexcept {
        if (count == 0 || count > space_left()) return std::nullopt;
        sqe_range range(this, sqe_tail_, count);
        sqe_tail_ += count;
        return range;
    }
    /// Free SQE slots.
    [[nodiscard]] unsigned space_left() const noexcept { return entries_ - (sqe_tail_ - load_head()); }
    /// SQEs taken and not yet consumed by the kernel.
    [[nodiscard]] unsigned pending() const noexcept { return sqe_tail_ - load_head(); }
    /// SQEs taken since the tail was last published.
    [[nodiscard]] unsigned unpublished() const noexcept { return sqe_tail_ - published_tail_; }
    [[nodiscard]] unsigned capacity() const noexcept { return entries_; }

    /// SQPOLL: the poller thread sleeps and must be woken by io_uring_enter(SQ_WAKEUP).
    [[nodiscard]] bool need_wakeup() const noexcept {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        return flags() & IORING_SQ_NEED_WAKEUP;
    }
    /// The kernel holds completions that did not fit into the CQ ring (IORING_SQ_CQ_OVERFLOW);
    /// an io_uring_enter with GETEVENTS moves them over as space frees up.
    [[nodiscard]] bool cq_overflow() const noexcept { return flags() & IORING_SQ_CQ_OVERFLOW; }
    /// Task work is pending (IORING_SQ_TASKRUN, with TASKRUN_FLAG): completions will appear
    /// only after an io_uring_enter with GETEVENTS.
    [[nodiscard]] bool taskrun() const noexcept { return flags() & IORING_SQ_TASKRUN; }
    /// SQEs the kernel dropped as invalid (a bad index in the SQ array).
    [[nodiscard]] unsigned dropped() const noexcept {
        return std::atomic_ref(*kdropped_).load(std::memory_order_relaxed);
    }

    /// Publishes the SQEs prepared so far to the kernel; returns how many it has yet to
    /// consume.
    unsigned flush() noexcept {
        if (published_tail_ != sqe_tail_) {
            published_tail_ = sqe_tail_;
            std::atomic_ref(*ktail_).store(sqe_tail_, std::memory_order_release);
        }
        return sqe_tail_ - load_head();
    }

private:
    friend class ring;
    friend class sqe_range;

    [[nodiscard]] unsigned load_head() const noexcept {
        return std::atomic_ref(*khead_).load(std::memory_order_acquire);
    }
    [[nodiscard]] unsigned flags() const noexcept {
        return std::atomic_ref(*kflags_).load(std::memory_order_relaxed);
    }
    [[nodiscard]] io_uring_sqe& at(unsigned index) const noexcept {
        return sqes_[(index & mask_) << sqe_shift_];
    }

    std::uint32_t* khead_ = nullptr;
    std::uint32_t* ktail_ = nullptr;
    std::uint32_t* kflags_ = nullptr;
    std::uint32_t* kdropped_ = nullptr;
    io_uring_sqe* sqes_ = nullptr;
    unsigned mask_ = 0;
    unsigned entries_ = 0;
    unsigned sqe_shift_ = 0; // 1 with SQE128: each entry spans two 64-byte io_uring_sqe
    unsigned sqe_tail_ = 0;       // next SQE to hand out
    unsigned published_tail_ = 0; // last tail stored for the kernel
};

inline io_uring_sqe& sqe_range::operator[](unsigned i) const noexcept { return sq_->at(first_ + i); }

inline void sqe_range::link(link_kind kind) const noexcept {
    const std::uint8_t flag = kind == link_kind::soft ? IOSQE_IO_LINK : IOSQE_IO_HARDLINK;
    constexpr std::uint8_t both = IOSQE_IO_LINK | IOSQE_IO_HARDLINK;
    for (unsigned i = 0; i < count_; ++i) {
        auto& sqe = (*this)[i];
        sqe.flags = static_cast<std::uint8_t>((sqe.flags & ~both) | (i + 1 < count_ ? flag : 0));
    }
}

} // namespace tram
