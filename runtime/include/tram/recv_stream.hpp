// A stream of received chunks from one multishot recv with a provided-buffer ring.
#pragma once

#include <tram/buffer_ring.hpp>
#include <tram/multishot.hpp>
#include <tram/recv_chunk.hpp>
#include <tram/socket.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

namespace tram {

/// The bytes arriving on a connected socket, from one multishot recv (6.0) that picks its
/// buffers from `ring`: one SQE for as long as data flows, no SQE or system call per receive.
///
/// Armed when constructed. `co_await next()` gives the next `recv_chunk`, in order, or nullopt
/// at end of stream. When the ring runs dry the kernel ends the recv with ENOBUFS (a CQE
/// without IORING_CQE_F_MORE) and leaves the unread data in the socket: the stream arms the
/// recv again (at once if a consumer waits, else on the next `next()`), so nothing is lost
/// and order is kept. If the consumer keeps every buffer (or, with a ring shared by many
/// streams, the others do), each re-arm meets ENOBUFS again and the stream keeps re-arming,
/// one round trip per loop turn, until a buffer comes back: size the ring for the chunks
/// held at once. Errors throw tram::error naming the peer ("recv 127.0.0.1:80: Connection
/// reset by peer (ECONNRESET)"); `cancel()` or a stop request on the coroutine awaiting
/// `next()` ends the stream once the kernel confirms: chunks that came before are delivered,
/// then `next()` throws ECANCELED.
///
/// The socket and `ring` must outlive the stream, and `ring` must outlive its multishot recv:
/// after destroying a stream that was still armed, keep the ring until the loop has run a
/// turn (the cancelled recv's last CQE gives its buffers back to the ring).
class recv_stream {
    struct recv_op {
        file_ref file;
        buffer_ring* ring;
        void prepare(io_uring_sqe& sqe) const noexcept {
            prep_recv_multishot(sqe, file, ring->group_id());
        }
        void discard(const completion& c) const noexcept {
            if (const auto id = c.buffer_id()) ring->recycle(*id);
        }
        [[nodiscard]] static bool restart_on(const completion& c) noexcept {
            return c.result == -ENOBUFS;
        }
    };

public:
    /// Arms the multishot recv on `s`: a connected socket (`tcp_stream`, `unix_stream`...) or a
    /// `direct_stream` in the registered file table, anything with `ref()` and `describe()`.
    template <typename Stream>
    recv_stream(const Stream& s, buffer_ring& ring)
        : recv_(recv_op{s.ref(), &ring})
        , subject_(s) {
        recv_.start();
    }

    class next_awaiter {
    public:
        explicit next_awaiter(recv_stream& s) noexcept
            : inner_(s.recv_.core(), true)
            , s_(&s) {}
        [[nodiscard]] bool await_ready() const noexcept {
            return s_->ended_ || inner_.await_ready();
        }
        template <typename Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return inner_.await_suspend(h);
        }
        std::optional<recv_chunk> await_resume() {
            if (s_->ended_) return std::nullopt;
            return s_->take(inner_.await_resume());
        }

    private:
        detail::multishot_core::next_awaiter inner_;
        recv_stream* s_;
    };

    /// `co_await next()`: the next chunk, or nullopt at end of stream.
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter(*this); }
    /// Stops receiving (see the class comment).
    void cancel() noexcept { recv_.cancel(); }
    /// How many times the multishot op was armed (1 + re-arms after the kernel ended it).
    [[nodiscard]] std::uint64_t arms() const noexcept { return recv_.arms(); }
    /// Chunks received and not yet taken.
    [[nodiscard]] std::size_t queued() const noexcept { return recv_.queued(); }

private:
    std::optional<recv_chunk> take(std::optional<completion> c) {
        if (!c) detail::throw_socket_error(ECANCELED, "recv", subject_);
        buffer_ring& ring = *recv_.op().ring;
        if (c->result > 0) {
            return recv_chunk(ring, c->buffer_id().value_or(0),
                              static_cast<std::uint32_t>(c->result));
        }
        if (const auto id = c->buffer_id()) ring.recycle(*id);
        if (c->result == 0) {
            // End of stream. If the kernel still has the recv armed, stop it.
            ended_ = true;
            if (c->more()) recv_.cancel();
            return std::nullopt;
        }
        const bool cancelled =
            recv_.core().cancel_requested() && (c->result == -ECANCELED || c->result == -EINTR);
        detail::throw_socket_error(cancelled ? ECANCELED : -c->result, "recv", subject_);
    }

    multishot<recv_op> recv_;
    detail::error_subject subject_;
    bool ended_ = false;
};

} // namespace tram
