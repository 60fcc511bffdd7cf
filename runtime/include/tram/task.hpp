// task<T>: a lazily started, move-only coroutine whose result is taken by co_await.
#pragma once

#include <tram/cancel_slot.hpp>
#include <tram/frame_allocator.hpp>

#include <coroutine>
#include <exception>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>

namespace tram {

template <typename T = void>
class task;

namespace detail {

/// What every tram coroutine promise has: its frame memory from the recycling allocator, the
/// coroutine to resume when it finishes, and the stop token that its I/O operations observe.
class promise_base {
public:
    static void* operator new(std::size_t size) { return frame_allocator::allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        frame_allocator::deallocate(frame, size);
    }

    std::suspend_always initial_suspend() const noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        // Symmetric transfer: the finished coroutine hands the thread straight to its awaiter,
        // so that a chain of nested awaits never deepens the stack.
        template <typename Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept {
            return h.promise().continuation_;
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }

    /// The stop token that cancels this coroutine's I/O (inherited from its awaiter).
    [[nodiscard]] const std::stop_token& stop_token() const noexcept { return stop_; }
    void set_stop_token(std::stop_token token) noexcept { stop_ = std::move(token); }
    void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }
    /// Where the operation this coroutine awaits is armed for its stop token to cancel.
    [[nodiscard]] detail::cancel_slot& cancel_slot() noexcept { return cancel_slot_; }

private:
    std::coroutine_handle<> continuation_ = std::noop_coroutine();
    std::stop_token stop_;
    detail::cancel_slot cancel_slot_;
};

/// The stop token of the coroutine behind `h`, if its promise carries one.
template <typename Promise>
[[nodiscard]] std::stop_token stop_token_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, Promise>) {
        return h.promise().stop_token();
    } else {
        return {};
    }
}

template <typename T>
class task_promise : public promise_base {
public:
    task<T> get_return_object() noexcept;
    void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
    template <typename U>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        result_.template emplace<1>(std::forward<U>(value));
    }
    T take_result() {
        if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
        return std::move(std::get<1>(result_));
    }

private:
    std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class task_promise<void> : public promise_base {
public:
    task<void> get_return_object() noexcept;
    void unhandled_exception() noexcept { error_ = std::current_exception(); }
    void return_void() const noexcept {}
    void take_result() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::exception_ptr error_;
};

} // namespace detail

/// A coroutine returning `T`. It starts only when awaited (`co_await std::move(t)`, or
/// `co_await make_task()`), resumes its awaiter when done, and rethrows its exception there.
/// The awaiter's stop token is passed on, so cancelling the awaiter cancels the I/O of every
/// task it awaits. Destroying a task that never started frees its frame.
template <typename T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept
        : h_(h) {}
    task(task&& other) noexcept
        : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (h_) h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_) h_.destroy();
    }

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
    [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }
    [[nodiscard]] handle_type handle() const noexcept { return h_; }

    class awaiter {
    public:
        explicit awaiter(handle_type h) noexcept
            : h_(h) {}
        bool await_ready() const noexcept { return !h_ || h_.done(); }
        template <typename Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
            h_.promise().set_continuation(parent);
            if (!h_.promise().stop_token().stop_possible()) {
                h_.promise().set_stop_token(detail::stop_token_of(parent));
            }
            return h_;
        }
        T await_resume() { return h_.promise().take_result(); }

    private:
        handle_type h_;
    };
    awaiter operator co_await() && noexcept { return awaiter(h_); }

    /// Makes the task's I/O observe `token` instead of its awaiter's.
    task&& with_stop_token(std::stop_token token) && noexcept {
        h_.promise().set_stop_token(std::move(token));
        return std::move(*this);
    }

private:
    handle_type h_;
};

namespace detail {

template <typename T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

} // namespace detail

} // namespace tram
