// Writing HTTP/1.1 answer heads: status lines, the Date header, content types by extension.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace http {

/// "Not Found" for 404...; "Unknown" for codes this server never sends.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

/// The media type for a file name, by its extension (case-insensitive);
/// application/octet-stream when unknown.
[[nodiscard]] std::string_view content_type_for(std::string_view path) noexcept;

/// The Date header's value (IMF-fixdate), formatted at most once per second: a server
/// answering many requests per second formats it once.
class date_cache {
public:
    /// "Sun, 06 Nov 1994 08:49:37 GMT" for the current second.
    [[nodiscard]] std::string_view now();

private:
    std::int64_t second_ = -1;
    char text_[40] = {};
    std::size_t size_ = 0;
};

/// Fields of an answer head besides the status line.
struct head_fields {
    std::string_view content_type; ///< omitted when empty
    std::uint64_t content_length = 0;
    /// "bytes 0-99/1000" or "bytes */1000"; omitted when empty.
    std::string_view content_range;
    std::string_view allow; ///< for 405; omitted when empty
    bool keep_alive = true;
    bool accept_ranges = false;
};

/// Appends "HTTP/1.1 STATUS REASON\r\n" and the fields, and the empty line, to `out`.
void append_head(std::string& out, int status, std::string_view date, const head_fields& fields);

/// Appends a small text/plain answer ("404 Not Found\n") with its head; with `body` false
/// (HEAD) only the head, with the same Content-Length.
void append_error(std::string& out, int status, std::string_view date, bool keep_alive, bool body,
                  std::string_view allow = {});

} // namespace http
