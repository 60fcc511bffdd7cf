// One client connection of the HTTP server: requests in, answers out, in order.
#pragma once

#include "file_cache.hpp"
#include "http_request.hpp"
#include "http_response.hpp"
#include "linked_ops.hpp"

#include <tram/task.hpp>
#include <tram/tcp.hpp>
#include <tram/unique_fd.hpp>

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace http_server {

/// Limits of a connection.
struct connection_options {
    /// The most a request head (request line and header fields) may take: beyond, 431.
    std::size_t max_head = 8 * 1024;
    /// The largest request body (by Content-Length) read and dropped so that the connection
    /// goes on: beyond, 413 and close.
    std::size_t max_body = 64 * 1024;
    /// A connection from which nothing arrived for this long is shut down (also one that reads
    /// no answer). Between the requests of a keep-alive connection, the only limit.
    std::chrono::milliseconds idle_timeout{10'000};
    /// A request head must be whole this long after its first byte arrived (and a dropped
    /// body as long again after its head): beyond, 408 and close. The idle timeout alone
    /// lets a client that sends a byte now and then hold its connection for ever (slowloris).
    std::chrono::milliseconds header_timeout{10'000};
};

/// A connection in its worker's list, for the sweep of idle and late connections (an
/// intrusive list: no allocation).
struct idle_entry {
    idle_entry* prev = nullptr;
    idle_entry* next = nullptr;
    int fd = -1;
    std::chrono::steady_clock::time_point last_active;
    /// When the request that is still arriving started (its first byte, or for a body the
    /// end of its head); meaningful while `receiving_request`.
    std::chrono::steady_clock::time_point request_started;
    /// The connection awaits the rest of a request, not the next one.
    bool receiving_request = false;
    bool timed_out = false;
    /// The request did not arrive whole within the header timeout: the receive was shut.
    bool request_timed_out = false;
};

/// What the connections of one worker thread share (used from that thread only).
struct worker_context {
    worker_context(file_cache cache, const connection_options& options) noexcept
        : files(std::move(cache))
        , limits(options) {}

    file_cache files;
    connection_options limits;
    http::date_cache date;
    idle_entry* idle_head = nullptr;

    void track(idle_entry& e) noexcept;
    void untrack(idle_entry& e) noexcept;
    /// Shuts down (SHUT_RDWR) the connections idle for longer than the timeout at `now`:
    /// their pending receive ends with end of stream, a pending send with EPIPE. Shuts the
    /// receive side (SHUT_RD) of those whose request is later than the header timeout: the
    /// receive ends the same way, and the connection can still send its 408.
    void shut_idle(std::chrono::steady_clock::time_point now) noexcept;
};

/// Serves `stream` until the client leaves, an answer says `Connection: close`, a request is
/// malformed or late, or the connection idles out. Never throws: a failing connection just ends.
tram::task<> serve_connection(worker_context& context, tram::tcp_stream stream);

} // namespace http_server
