#include "connection.hpp"

#include <tram/error.hpp>
#include <tram/sqe.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <span>
#include <utility>

namespace http_server {

void worker_context::track(idle_entry& e) noexcept {
    e.next = idle_head;
    if (idle_head != nullptr) idle_head->prev = &e;
    idle_head = &e;
}

void worker_context::untrack(idle_entry& e) noexcept {
    if (e.prev != nullptr) e.prev->next = e.next;
    if (e.next != nullptr) e.next->prev = e.prev;
    if (idle_head == &e) idle_head = e.next;
    e.prev = e.next = nullptr;
}

void worker_context::shut_idle(std::chrono::steady_clock::time_point now) noexcept {
    for (idle_entry* e = idle_head; e != nullptr; e = e->next) {
        if (e->timed_out) continue;
        if (now - e->last_active > limits.idle_timeout) {
            e->timed_out = true;
            // A plain system call, only for the rare idle connection: it ends whatever the
            // connection awaits (recv gives 0, send and splice EPIPE), with no cancellation
            // to track.
            ::shutdown(e->fd, SHUT_RDWR);
        } else if (e->receiving_request && !e->request_timed_out &&
                   now - e->request_started > limits.header_timeout) {
            e->request_timed_out = true;
            // The receive side only: the pending recv gives 0 all the same, and the 408
            // can still go out. (Bytes the client sends after our FIN then draw a reset
            // instead of being drained: a late client's loss, not another's.)
            ::shutdown(e->fd, SHUT_RD);
        }
    }
}

namespace {

// Bodies up to this size are copied behind their head, so that an answer is one iovec; larger
// ones are sent from the cache's memory.
constexpr std::size_t inline_body_limit = 4096;
// Answers gathered before they must go out (a client pipelining many requests).
constexpr std::size_t max_segments = 32;
constexpr std::size_t max_pending_bytes = 256 * 1024;
// The pipe of a connection that splices: as large as the kernel allows an unprivileged user.
constexpr int wanted_pipe_size = 1024 * 1024;

class connection {
public:
    connection(worker_context& context, tram::tcp_stream& stream)
        : context_(context)
        , stream_(stream)
        , in_capacity_(2 * context.limits.max_head + 1024)
        , in_(std::make_unique<std::byte[]>(in_capacity_)) {
        idle_.fd = stream.fd();
        idle_.last_active = std::chrono::steady_clock::now();
        context_.track(idle_);
        out_.reserve(4096);
        segments_.reserve(max_segments + 1);
        iov_.reserve(max_segments + 1);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { context_.untrack(idle_); }

    tram::task<> run();

private:
    struct segment {
        const char* external; // null: bytes of out_ from `offset`
        std::size_t offset;
        std::size_t length;
    };

    [[nodiscard]] std::string_view received() const noexcept {
        return {reinterpret_cast<const char*>(in_.get()), have_};
    }
    [[nodiscard]] bool has_pending() const noexcept {
        return !segments_.empty() || out_.size() > out_mark_;
    }
    void end_run() {
        if (out_.size() > out_mark_)
            segments_.push_back({nullptr, out_mark_, out_.size() - out_mark_});
        out_mark_ = out_.size();
    }
    std::span<const iovec> gather() {
        end_run();
        iov_.clear();
        for (const segment& s : segments_) {
            const char* base = s.external != nullptr ? s.external : out_.data() + s.offset;
            iov_.push_back({const_cast<char*>(base), s.length});
        }
        return iov_;
    }
    void forget_pending() noexcept {
        out_.clear();
        out_mark_ = 0;
        segments_.clear();
        held_.clear();
    }

    bool route(const http::request& request);
    bool respond(const http::request& request, const std::shared_ptr<const cached_file>& file,
                 std::uint64_t& offset, std::uint64_t& length);
    void append_error(int status, bool keep_alive, bool body, std::string_view allow = {}) {
        http::append_error(out_, status, context_.date.now(), keep_alive, body, allow);
    }
    tram::task<bool> send_spliced(const cached_file& file, std::uint64_t offset,
                                  std::uint64_t length);
    tram::task<bool> flush();
    tram::task<> linger_close();
    tram::task<> end_late_request();
    bool accept_body(const http::request& request);
    // Drops the bytes of the body being skipped that `in_` holds past `used`; gives how many.
    std::size_t drop_body(std::size_t used) noexcept {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, have_ - used));
        body_left_ -= n;
        return n;
    }
    // The head of a request, or the body that follows it, is later than the header timeout.
    [[nodiscard]] bool request_late() const noexcept {
        return idle_.request_timed_out ||
               now_ - idle_.request_started > context_.limits.header_timeout;
    }
    bool make_pipe();
    // Whether the deferred body fits one pipeful (making the pipe if need be).
    bool fits_one_pipe() {
        return make_pipe() && splice_length_ <= pipe_size_ - (splice_offset_ % 4096);
    }

    worker_context& context_;
    tram::tcp_stream& stream_;
    idle_entry idle_;
    std::size_t in_capacity_;
    std::unique_ptr<std::byte[]> in_;
    std::size_t have_ = 0;
    // Bytes of the last request's body still to drop before the next head.
    std::uint64_t body_left_ = 0;
    std::string out_;
    std::size_t out_mark_ = 0;
    std::vector<segment> segments_;
    std::vector<iovec> iov_;
    // Keeps the cached files whose memory pending iovecs point into.
    std::vector<std::shared_ptr<const cached_file>> held_;
    std::string path_;
    linked_ops ops_;
    tram::unique_fd pipe_read_;
    tram::unique_fd pipe_write_;
    std::uint32_t pipe_size_ = 0;
    std::chrono::steady_clock::time_point now_;
    // An answer whose head is pending and whose body is still to be spliced.
    std::shared_ptr<const cached_file> splice_file_;
    std::uint64_t splice_offset_ = 0;
    std::uint64_t splice_length_ = 0;
};

tram::task<> connection::run() {
    const int fd = stream_.fd();
    ops_.clear();
    ops_.recv(fd, {in_.get(), in_capacity_});
    co_await ops_;
    int got = ops_.result(0);
    for (;;) {
        // Only a wait for a receive is the client's to answer for.
        idle_.receiving_request = false;
        if (idle_.timed_out) co_return; // idled out
        if (got <= 0) {
            // Gone or reset; or the sweep shut the receive of a late request: say why.
            if (idle_.request_timed_out && (have_ > 0 || body_left_ > 0))
                co_await end_late_request();
            co_return;
        }
        now_ = std::chrono::steady_clock::now();
        if (have_ == 0 && body_left_ == 0) idle_.request_started = now_; // a request's first byte
        have_ += static_cast<std::size_t>(got);
        idle_.last_active = now_;

        bool closing = false;
        std::size_t used = 0;
        while (!closing) {
            if (body_left_ > 0) {
                used += drop_body(used);
                if (body_left_ > 0) break;
                idle_.request_started = now_; // what follows is the next request
            }
            http::request request;
            const http::parse_status status =
                http::parse_request(received().substr(used), context_.limits.max_head, request);
            if (status == http::parse_status::incomplete) break;
            // An answer waits for its spliced body: it goes before the next one.
            if (splice_file_ != nullptr && !co_await flush()) co_return;
            if (status != http::parse_status::complete) {
                // The stream cannot be trusted past a malformed head: answer and close.
                const int code = status == http::parse_status::header_too_large        ? 431
                                 : status == http::parse_status::version_not_supported ? 505
                                                                                       : 400;
                append_error(code, false, true);
                closing = true;
                break;
            }
            used += request.head_size;
            // The head is whole: its body, if any, has as long again from now.
            idle_.request_started = now_;
            if (!accept_body(request)) {
                closing = true;
                break;
            }
            std::shared_ptr<const cached_file> file;
            if (route(request)) {
                file = context_.files.find_fresh(path_, now_);
                if (file == nullptr) {
                    lookup_result found = co_await context_.files.load(path_);
                    if (found.status != 200) {
                        append_error(found.status, request.keep_alive, request.method == "GET");
                    }
                    file = std::move(found.file);
                }
            }
            std::uint64_t offset = 0;
            std::uint64_t length = 0;
            if (file != nullptr && respond(request, file, offset, length)) {
                // Deferred: when it is the last answer of the batch, its body and the next
                // receive go out as one chain.
                splice_file_ = std::move(file);
                splice_offset_ = offset;
                splice_length_ = length;
            }
            closing = !request.keep_alive;
            if (!closing &&
                (segments_.size() >= max_segments || out_.size() >= max_pending_bytes)) {
                if (!co_await flush()) co_return;
            }
        }
        if (used > 0) {
            std::memmove(in_.get(), in_.get() + used, have_ - used);
            have_ -= used;
        }
        if (closing) {
            if (co_await flush()) co_await linger_close();
            co_return;
        }
        const bool in_request = have_ > 0 || body_left_ > 0;
        if (in_request && request_late()) {
            co_await end_late_request();
            co_return;
        }
        // The answers so far, then the next requests: one SQE batch, one CQE.
        if (splice_file_ != nullptr && !fits_one_pipe() && !co_await flush()) co_return;
        ops_.clear();
        if (has_pending()) ops_.sendmsg(fd, gather(), splice_file_ != nullptr);
        if (splice_file_ != nullptr) {
            const auto length = static_cast<std::uint32_t>(splice_length_);
            ops_.splice(splice_file_->file.fd(), static_cast<std::int64_t>(splice_offset_),
                        pipe_write_.get(), length);
            ops_.splice(pipe_read_.get(), tram::no_offset, fd, length);
        }
        ops_.recv(fd, {in_.get() + have_, in_capacity_ - have_});
        idle_.receiving_request = in_request;
        co_await ops_;
        splice_file_.reset();
        forget_pending();
        // A step that failed or came up short (a file that shrank) ends the connection: what
        // the client got no longer matches the Content-Length it was promised.
        for (unsigned i = 0; i + 1 < ops_.size(); ++i) {
            if (!ops_.succeeded(i)) co_return;
        }
        got = ops_.result(ops_.size() - 1);
    }
}

// Whether the connection can go on past the body of `request`. A static server has no use for
// a body, but any request may carry one: one of known length up to the cap is dropped as it
// arrives (the answer need not wait for it). A larger one, or a chunked one, is refused, and
// the connection closes rather than read through it to the next request.
bool connection::accept_body(const http::request& request) {
    const bool body = request.method != "HEAD";
    if (request.chunked) {
        append_error(411, false, body); // Length Required: a Content-Length we would take
        return false;
    }
    if (request.content_length > context_.limits.max_body) {
        append_error(413, false, body);
        return false;
    }
    body_left_ = request.content_length;
    return true;
}

// Answers what needs no file (errors), or finds the path of the file to send: true then.
bool connection::route(const http::request& request) {
    const bool is_get = request.method == "GET";
    if (!is_get && request.method != "HEAD") {
        append_error(405, request.keep_alive, true, "GET, HEAD");
        return false;
    }
    switch (http::target_to_path(request.target, path_)) {
    case http::target_status::ok:
        return true;
    case http::target_status::forbidden:
        append_error(403, request.keep_alive, is_get);
        return false;
    case http::target_status::bad_request:
        break;
    }
    append_error(400, request.keep_alive, is_get);
    return false;
}

// Appends the answer with `file`; true when its body must still be spliced (`offset`,
// `length`), after what is pending.
bool connection::respond(const http::request& request,
                         const std::shared_ptr<const cached_file>& file, std::uint64_t& offset,
                         std::uint64_t& length) {
    const bool is_get = request.method == "GET";
    const std::uint64_t size = file->size;
    offset = 0;
    length = size;
    int status = 200;
    char range_text[64];
    http::head_fields fields;
    fields.content_type = file->content_type;
    fields.keep_alive = request.keep_alive;
    fields.accept_ranges = true;
    if (!request.range.empty()) {
        const http::byte_range range = http::parse_range(request.range, size);
        if (range.what == http::byte_range::kind::unsatisfiable) {
            const auto [end, ec] =
                std::to_chars(range_text + 8, range_text + sizeof range_text, size);
            std::memcpy(range_text, "bytes */", 8);
            constexpr std::string_view body = "416 Range Not Satisfiable\n";
            fields.content_type = "text/plain; charset=utf-8";
            fields.content_length = body.size();
            fields.content_range =
                std::string_view(range_text, static_cast<std::size_t>(end - range_text));
            http::append_head(out_, 416, context_.date.now(), fields);
            if (is_get) out_ += body;
            return false;
        }
        if (range.what == http::byte_range::kind::satisfiable) {
            status = 206;
            offset = range.first;
            length = range.last - range.first + 1;
            char* at = range_text;
            std::memcpy(at, "bytes ", 6);
            at = std::to_chars(at + 6, range_text + sizeof range_text, range.first).ptr;
            *at++ = '-';
            at = std::to_chars(at, range_text + sizeof range_text, range.last).ptr;
            *at++ = '/';
            at = std::to_chars(at, range_text + sizeof range_text, size).ptr;
            fields.content_range =
                std::string_view(range_text, static_cast<std::size_t>(at - range_text));
        }
    }
    fields.content_length = length;
    http::append_head(out_, status, context_.date.now(), fields);
    if (!is_get || length == 0) return false;
    if (!file->in_memory) return true;
    const char* body = file->content.data() + offset;
    if (length <= inline_body_limit) {
        out_.append(body, length);
    } else {
        end_run();
        segments_.push_back({body, 0, length});
        held_.push_back(file);
    }
    return false;
}

bool connection::make_pipe() {
    if (pipe_read_) return true;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    pipe_read_ = tram::unique_fd(fds[0]);
    pipe_write_ = tram::unique_fd(fds[1]);
    // A larger pipe moves a large file in fewer rounds; the kernel may refuse (pipe-max-size,
    // pipe-user-pages-soft), which only costs rounds.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, wanted_pipe_size);
    const int size = ::fcntl(fds[1], F_GETPIPE_SZ);
    pipe_size_ = size > 0 ? static_cast<std::uint32_t>(size) : 65536;
    return true;
}

// What is pending (with MSG_MORE), then the file through the pipe, a pipeful per round: the
// bytes go from the page cache to the socket without passing through this process.
tram::task<bool> connection::send_spliced(const cached_file& file, std::uint64_t offset,
                                          std::uint64_t length) {
    if (!make_pipe()) co_return false;
    const int fd = stream_.fd();
    while (length > 0) {
        // A pipe holds pipe_size_ / 4096 pages, and a chunk that starts inside a page takes one
        // page more: end the first chunk on a page boundary, so that none comes up short.
        const std::uint64_t room = pipe_size_ - (offset % 4096);
        const auto chunk = static_cast<std::uint32_t>(std::min<std::uint64_t>(length, room));
        ops_.clear();
        const bool sends = has_pending();
        if (sends) ops_.sendmsg(fd, gather(), true);
        const unsigned fill = ops_.size();
        ops_.splice(file.file.fd(), static_cast<std::int64_t>(offset), pipe_write_.get(), chunk);
        ops_.splice(pipe_read_.get(), tram::no_offset, fd, chunk);
        co_await ops_;
        forget_pending();
        if (sends && !ops_.succeeded(0)) co_return false;
        const int moved = ops_.result(fill);
        // Nothing moved: the file shrank below its Content-Length; the answer cannot be
        // completed, so the connection ends.
        if (moved <= 0) co_return false;
        if (static_cast<std::uint32_t>(moved) < chunk) {
            // A short fill broke the link before the pipe was drained: drain it now.
            ops_.clear();
            ops_.splice(pipe_read_.get(), tram::no_offset, fd, static_cast<std::uint32_t>(moved));
            co_await ops_;
        }
        // A short drain leaves bytes in the pipe: they would go out with the next answer.
        if (!ops_.succeeded(ops_.size() - 1)) co_return false;
        offset += static_cast<std::uint64_t>(moved);
        length -= static_cast<std::uint64_t>(moved);
        idle_.last_active = std::chrono::steady_clock::now();
    }
    co_return true;
}

tram::task<bool> connection::flush() {
    if (splice_file_ != nullptr) {
        // What is pending ends with the head of the deferred answer: its body follows it.
        const std::shared_ptr<const cached_file> file = std::move(splice_file_);
        splice_file_.reset();
        co_return co_await send_spliced(*file, splice_offset_, splice_length_);
    }
    if (!has_pending()) co_return true;
    ops_.clear();
    ops_.sendmsg(stream_.fd(), gather(), false);
    co_await ops_;
    forget_pending();
    co_return ops_.succeeded(0);
}

// Closes after the last answer without losing it: a close with unread requests in the receive
// buffer would send a reset, which may destroy the answer before the client reads it
// (RFC 9112 9.6). So: FIN first, then drop what the client still sends, for a bounded time.
tram::task<> connection::linger_close() {
    try {
        co_await stream_.shutdown(SHUT_WR);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        std::size_t dropped = 0;
        while (dropped < 1024 * 1024) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::steady_clock::duration::zero()) break;
            const std::size_t n =
                co_await stream_.recv({in_.get(), in_capacity_}).with_timeout(left);
            if (n == 0) break;
            dropped += n;
        }
    } catch (const tram::error&) {
        // Reset or timed out: nothing more to do for this client.
    }
}

// Ends a connection whose request did not arrive whole in time, after the answers before it:
// with a 408 when its head is late; a late body belongs to a request already answered, so
// there the connection is only closed.
tram::task<> connection::end_late_request() {
    if (body_left_ == 0) append_error(408, false, true);
    // Not `if (co_await flush())`: GCC 12.2 miscompiles that in this coroutine (its ramp and
    // its body disagree on where the resume index is, and the body never starts).
    const bool sent = co_await flush();
    if (sent) co_await linger_close();
}

} // namespace

tram::task<> serve_connection(worker_context& context, tram::tcp_stream stream) {
    try {
        // Answers go out whole in one send; Nagle would only hold back the last segment.
        stream.set_nodelay(true);
        connection c(context, stream);
        co_await c.run();
    } catch (const std::exception&) {
        // A connection that fails (out of memory, a socket error) ends alone.
    }
}

} // namespace http_server
