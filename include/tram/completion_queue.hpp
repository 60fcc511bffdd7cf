// The completion queue: the mapped CQ ring, seen from the application side.
#pragma once

#include <tram/completion.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>

namespace tram {

class ring;

/// The application's side of the CQ ring.
///
/// Memory ordering. The CQ tail is the kernel's and the head ours. We load the tail with
/// acquire semantics so that the CQE contents the kernel wrote before storing the tail (with
/// release) are visible to us. We store the head with release so that our reads of the CQEs
/// are done before the kernel, loading the head with acquire, may overwrite those slots.
class completion_queue {
public:
    completion_queue() = default;
    completion_queue(const completion_queue&) = delete;
    completion_queue& operator=(const completion_queue&) = delete;

    /// Completions waiting to be consumed.
    [[nodiscard]] unsigned ready() const noexcept { return load_tail() - head(); }
    /// The oldest waiting completion, left in place.
    [[nodiscard]] std::optional<completion> peek() const noexcept {
        if (ready() == 0) return std::nullopt;
        return copy(head());
    }
    /// Marks the `count` oldest completions as consumed.
    void advance(unsigned count) noexcept { store_head(head() + count); }
    [[nodiscard]] unsigned capacity() const noexcept { return entries_; }
    /// Completions the kernel had to drop because the CQ was full and it lacks (or could not
    /// allocate for) IORING_FEAT_NODROP. Non-zero means completions were lost.
    [[nodiscard]] unsigned overflow() const noexcept {
        return std::atomic_ref(*koverflow_).load(std::memory_order_relaxed);
    }
    /// Turns eventfd notifications for this ring on or off (IORING_CQ_EVENTFD_DISABLED).
    void set_eventfd_enabled(bool enabled) noexcept;

private:
    friend class ring;
    friend class completion_range;

    [[nodiscard]] unsigned load_tail() const noexcept {
        return std::atomic_ref(*ktail_).load(std::memory_order_acquire);
    }
    [[nodiscard]] unsigned head() const noexcept {
        return std::atomic_ref(*khead_).load(std::memory_order_relaxed);
    }
    void store_head(unsigned head) noexcept {
        std::atomic_ref(*khead_).store(head, std::memory_order_release);
    }
    [[nodiscard]] completion copy(unsigned index) const noexcept {
        const io_uring_cqe& cqe = cqes_[(index & mask_) << cqe_shift_];
        completion c{cqe.user_data, cqe.res, cqe.flags, {}};
        if (cqe_shift_ != 0) std::memcpy(c.extra.data(), &cqe + 1, sizeof(c.extra));
        return c;
    }

    std::uint32_t* khead_ = nullptr;
    std::uint32_t* ktail_ = nullptr;
    std::uint32_t* koverflow_ = nullptr;
    std::uint32_t* kflags_ = nullptr;
    io_uring_cqe* cqes_ = nullptr;
    unsigned mask_ = 0;
    unsigned entries_ = 0;
    unsigned cqe_shift_ = 0; // 1 with CQE32: each entry spans two 16-byte io_uring_cqe
};

/// An iteration over completions, each copied out by value. The head is handed back to the
/// kernel once per batch, not per CQE: when the iteration has to look at the tail again, and
/// when the range is destroyed, so that a `break` out of the loop consumes exactly the
/// completions seen. A blocking range (`ring::wait_completions`) waits in the kernel when it
/// runs out; a non-blocking one (`ring::completions`) ends.
class completion_range {
public:
    struct sentinel {};
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = completion;
        using difference_type = std::ptrdiff_t;

        const completion& operator*() const noexcept { return range_->current_; }
        const completion* operator->() const noexcept { return &range_->current_; }
        iterator& operator++() {
            range_->next();
            return *this;
        }
        void operator++(int) { range_->next(); }
        friend bool operator==(const iterator& it, sentinel) noexcept { return it.range_->done(); }

    private:
        friend class completion_range;
        explicit iterator(completion_range* r) noexcept : range_(r) {}
        completion_range* range_;
    };

    completion_range(completion_queue& cq, ring* waiter) noexcept
        : cq_(&cq), waiter_(waiter), head_(cq.head()), tail_(cq.load_tail()) {}
    completion_range(const completion_range&) = delete;
    completion_range& operator=(const completion_range&) = delete;
    /// Hands back the completions seen, including the current one when the loop was left
    /// with `break` (or an exception) while holding it.
    ~completion_range() { cq_->store_head(begun_ && head_ != tail_ ? head_ + 1 : head_); }

    /// Starts the iteration; call once.
    [[nodiscard]] iterator begin() {
        begun_ = true;
        fetch();
        return iterator(this);
    }
    [[nodiscard]] sentinel end() const noexcept { return {}; }
    [[nodiscard]] bool done() const noexcept { return done_; }

private:
    void next() {
        ++head_;
        fetch();
    }
    // Inline for the common case, a completion already known to be there; `refill` (out of
    // line) looks at the tail again and, for a blocking range, waits.
    void fetch() {
        if (head_ != tail_) {
            current_ = cq_->copy(head_);
            return;
        }
        refill();
    }
    void refill();

    completion_queue* cq_;
    ring* waiter_; // null: do not wait
    unsigned head_;
    unsigned tail_;
    completion current_{};
    bool done_ = false;
    // After begin(), head_ != tail_ exactly when current_ holds the CQE at head_: the one the
    // loop body is looking at, consumed even if the loop is left before `++`.
    bool begun_ = false;
};

} // namespace tram
