// The HTTP/1.x request head: parsing, the request target turned into a path under the root,
// and the Range header. Pure functions over the bytes received: no I/O, no allocation except
// the path string a caller reuses, so that they can be fuzzed alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace http {

/// What `parse_request` found at the start of its input.
enum class parse_status {
    complete,              ///< a whole head; `request::head_size` bytes of it
    incomplete,            ///< no end of head yet, and fewer bytes than the cap
    bad_request,           ///< malformed (400)
    header_too_large,      ///< the head exceeds the cap (431)
    version_not_supported, ///< HTTP/2 and later, as text (505)
};

/// A parsed request head. The views point into the parsed input.
struct request {
    std::string_view method;
    std::string_view target;
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    int minor_version = 1;
    /// Whether the connection may stay open after the answer (the version's default,
    /// changed by `Connection: close` or `Connection: keep-alive`).
    bool keep_alive = true;
    /// The request announces a body (Content-Length above 0, or Transfer-Encoding).
    bool has_body = false;
    /// The body's length from Content-Length; 0 without one.
    std::uint64_t content_length = 0;
    /// Transfer-Encoding ends in chunked: a body whose length only its chunks tell. (Any other
    /// final coding leaves the length unknown: bad_request, RFC 9112 6.3.)
    bool chunked = false;
    /// The value of the Range header, empty if none.
    std::string_view range;
    /// Bytes of the head, its final empty line included: where the next request starts.
    std::size_t head_size = 0;
};

/// Parses the request head at the start of `input`. A head longer than `max_head_size`
/// bytes (whether complete or not) is `header_too_large`. Empty lines before the request line
/// are skipped (RFC 9112 2.2). Lines may end in CRLF or a bare LF.
[[nodiscard]] parse_status parse_request(std::string_view input, std::size_t max_head_size,
                                         request& out) noexcept;

/// What a request target means on disk.
enum class target_status {
    ok,          ///< `path` holds a relative path under the root
    bad_request, ///< not an origin-form target, bad percent-encoding, an encoded NUL
    forbidden,   ///< a `..` segment (before or after decoding)
};

/// Turns an origin-form target ("/a/b%20c.txt?x=1") into a path relative to the root
/// ("a/b c.txt"): query and fragment dropped, percent-decoding, empty and "." segments
/// dropped; a target ending in '/' names "index.html" in that directory. Never gives an
/// absolute path or one with a ".." segment. `path` is overwritten (its capacity reused).
[[nodiscard]] target_status target_to_path(std::string_view target, std::string& path);

/// A byte range from the Range header, checked against the file size.
struct byte_range {
    enum class kind {
        none,          ///< no usable Range: send the whole file (200)
        satisfiable,   ///< send [first, last] (206)
        unsatisfiable, ///< 416 with Content-Range: bytes */size
    };
    kind what = kind::none;
    std::uint64_t first = 0;
    std::uint64_t last = 0; ///< inclusive
};

/// Reads a single `bytes=` range. Several ranges, other units and malformed values are
/// ignored (whole file), which RFC 9110 14.2 allows.
[[nodiscard]] byte_range parse_range(std::string_view value, std::uint64_t size) noexcept;

} // namespace http
