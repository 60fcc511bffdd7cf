// Awaiting the first of several tasks, cancelling the others.
#pragma once

#include <tram/when_all.hpp>

#include <optional>
#include <stdexcept>
#include <stop_token>

namespace tram {

/// The outcome of `when_any`: which task finished first, and its value.
template <typename T>
struct when_any_result {
    std::size_t index;
    T value;
};

namespace detail {

// Records the first child to finish, and asks the others to stop.
struct first_finisher {
    std::optional<std::size_t> winner;
    std::stop_source stop;

    static void on_child_done(void* self, std::size_t index) noexcept {
        auto& f = *static_cast<first_finisher*>(self);
        if (f.winner) return;
        f.winner = index;
        f.stop.request_stop();
    }
};

// Forwards a stop request of the awaiting coroutine to the children.
struct forward_stop {
    std::stop_source* target;
    void operator()() const noexcept { target->request_stop(); }
};

// Builds the variant for the winner at run-time position `index`.
template <std::size_t I, typename Variant, typename Tuple>
Variant take_as_variant(Tuple& tasks, std::size_t index) {
    if constexpr (I + 1 < std::tuple_size_v<Tuple>) {
        if (index != I) return take_as_variant<I + 1, Variant>(tasks, index);
    }
    return Variant(std::in_place_index<I>, take(std::get<I>(tasks)));
}

struct current_stop_token {
    std::stop_token token;
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        token = stop_token_of(h);
        return false;
    }
    std::stop_token await_resume() noexcept { return std::move(token); }
};

} // namespace detail

/// Runs the tasks concurrently; when the first one finishes, requests a stop on the others
/// (cancelling their I/O in the kernel) and waits until they have all finished, then returns
/// the first one's index and value (or rethrows its exception). Exceptions of the others are
/// discarded: they were asked to stop. Throws std::invalid_argument for no tasks (nothing
/// could finish first).
template <typename T>
task<when_any_result<detail::value_or_monostate<T>>> when_any(std::vector<task<T>> tasks) {
    if (tasks.empty()) throw std::invalid_argument("tram::when_any: no tasks to wait for");
    detail::first_finisher first;
    const std::stop_token outer = co_await detail::current_stop_token{};
    std::stop_callback forward(outer, detail::forward_stop{&first.stop});
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (auto& t : tasks) {
        t = std::move(t).with_stop_token(first.stop.get_token());
        children.push_back(detail::run_child(t));
    }
    detail::join_state state;
    state.on_child_done = &detail::first_finisher::on_child_done;
    state.context = &first;
    co_await detail::join_awaiter(children, state);
    const std::size_t index = *first.winner;
    co_return when_any_result<detail::value_or_monostate<T>>{index, detail::take(tasks[index])};
}

/// `when_any` over tasks of different types: the value comes back in a variant whose index is
/// the winning task's position.
template <typename... T>
task<std::variant<detail::value_or_monostate<T>...>> when_any(task<T>... tasks) {
    detail::first_finisher first;
    const std::stop_token outer = co_await detail::current_stop_token{};
    std::stop_callback forward(outer, detail::forward_stop{&first.stop});
    std::tuple<task<T>...> owned(std::move(tasks).with_stop_token(first.stop.get_token())...);
    std::vector<detail::join_child> children;
    children.reserve(sizeof...(T));
    std::apply([&](auto&... t) { (children.push_back(detail::run_child(t)), ...); }, owned);
    detail::join_state state;
    state.on_child_done = &detail::first_finisher::on_child_done;
    state.context = &first;
    co_await detail::join_awaiter(children, state);
    co_return detail::take_as_variant<0, std::variant<detail::value_or_monostate<T>...>>(
        owned, *first.winner);
}

} // namespace tram
