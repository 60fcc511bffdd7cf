// Awaiting several tasks at once.
#pragma once

#include <tram/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tram {
namespace detail {

/// A task's value type, with void as std::monostate so that it fits in tuples and variants.
template <typename T>
using value_or_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What the children of a join share: how many are still running, and whom to resume.
struct join_state {
    std::size_t remaining = 0;
    std::coroutine_handle<> parent;
    void (*on_child_done)(void* context, std::size_t index) noexcept = nullptr;
    void* context = nullptr;
};

/// A small coroutine per child of a join: it runs the child task to completion (leaving the
/// result in the task) and resumes the parent when it is the last one.
class join_child {
public:
    class promise_type : public promise_base {
    public:
        join_child get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); } // tasks keep their own

        struct finish {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                promise_type& p = h.promise();
                join_state& join = *p.join;
                if (join.on_child_done != nullptr) join.on_child_done(join.context, p.index);
                return --join.remaining == 0 ? join.parent : std::noop_coroutine();
            }
            void await_resume() const noexcept {}
        };
        finish final_suspend() const noexcept { return {}; }

        join_state* join = nullptr;
        std::size_t index = 0;
    };

    join_child(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    join_child(join_child&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    join_child& operator=(join_child&&) = delete;
    ~join_child() {
        if (h_) h_.destroy();
    }
    [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return h_; }

private:
    std::coroutine_handle<promise_type> h_;
};

/// Awaits a task's completion without taking its result.
template <typename T>
struct completion_of {
    typename task<T>::handle_type child;
    bool await_ready() const noexcept { return child.done(); }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        child.promise().set_continuation(h);
        if (!child.promise().stop_token().stop_possible()) {
            child.promise().set_stop_token(stop_token_of(h));
        }
        return child;
    }
    void await_resume() const noexcept {}
};

template <typename T>
join_child run_child(task<T>& t) {
    co_await completion_of<T>{t.handle()};
}

/// Starts every child (each runs until its first suspension, in order) and resumes the parent
/// once all have finished. `children` must outlive the join.
class join_awaiter {
public:
    join_awaiter(std::vector<join_child>& children, join_state& state) noexcept
        : children_(&children), state_(&state) {}
    bool await_ready() const noexcept { return children_->empty(); }
    // Returns false (the parent goes on at once) when every child finished synchronously:
    // resuming the parent from in here instead would run it on top of this call, whose frame
    // the parent may destroy before the call returns.
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        state_->parent = parent;
        // One extra count held while starting, so that children finishing synchronously do
        // not resume the parent before the last one has even started.
        state_->remaining = children_->size() + 1;
        const std::stop_token token = stop_token_of(parent);
        for (std::size_t i = 0; i < children_->size(); ++i) {
            auto h = (*children_)[i].handle();
            h.promise().join = state_;
            h.promise().index = i;
            if (!h.promise().stop_token().stop_possible()) h.promise().set_stop_token(token);
            h.resume();
        }
        return --state_->remaining != 0;
    }
    void await_resume() const noexcept {}

private:
    std::vector<join_child>* children_;
    join_state* state_;
};

template <typename T>
value_or_monostate<T> take(task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.handle().promise().take_result();
        return {};
    } else {
        return t.handle().promise().take_result();
    }
}

} // namespace detail

/// Runs all tasks concurrently and returns all their values, in order (std::monostate for a
/// task<void>). If some throw, the exception of the first of them (by position) is rethrown,
/// after all have finished.
template <typename... T>
task<std::tuple<detail::value_or_monostate<T>...>> when_all(task<T>... tasks) {
    std::tuple<task<T>...> owned(std::move(tasks)...);
    std::vector<detail::join_child> children;
    children.reserve(sizeof...(T));
    std::apply([&](auto&... t) { (children.push_back(detail::run_child(t)), ...); }, owned);
    detail::join_state state;
    co_await detail::join_awaiter(children, state);
    co_return std::apply(
        // Braces: a braced list evaluates left to right, so the first exception by position
        // is the one rethrown (a parenthesised call leaves the order unspecified).
        [](auto&... t) { return std::tuple<detail::value_or_monostate<T>...>{detail::take(t)...}; },
        owned);
}

/// Runs all tasks concurrently and returns their values in order; rethrows the exception of
/// the first one (by position) that threw, after all have finished.
template <typename T>
task<std::vector<detail::value_or_monostate<T>>> when_all(std::vector<task<T>> tasks) {
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (auto& t : tasks) children.push_back(detail::run_child(t));
    detail::join_state state;
    co_await detail::join_awaiter(children, state);
    std::vector<detail::value_or_monostate<T>> values;
    values.reserve(tasks.size());
    for (auto& t : tasks) values.push_back(detail::take(t));
    co_return values;
}

} // namespace tram
