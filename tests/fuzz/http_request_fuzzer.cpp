// libFuzzer target: the HTTP request parser of examples/http_server (built by scripts/fuzz).
// Beyond "no crash, no sanitizer report", it checks what callers rely on: a complete head
// lies within the input and the cap, and a path never leaves the root.
#include "http_request.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // The first byte picks the cap, so that small caps are explored too.
    const std::size_t cap = size > 0 ? 16 + data[0] * 64 : 8192;
    http::request r;
    const http::parse_status status = http::parse_request(input, cap, r);
    if (status == http::parse_status::complete) {
        if (r.head_size == 0 || r.head_size > input.size() || r.head_size > cap) std::abort();
        std::string path;
        if (http::target_to_path(r.target, path) == http::target_status::ok) {
            if (path.empty() || path.front() == '/') std::abort();
            if (path.find('\0') != std::string::npos) std::abort();
            // No ".." segment may survive.
            const std::string wrapped = "/" + path + "/";
            if (wrapped.find("/../") != std::string::npos) std::abort();
        }
        const http::byte_range range = http::parse_range(r.range, size);
        if (range.what == http::byte_range::kind::satisfiable &&
            (range.first > range.last || range.last >= size)) {
            std::abort();
        }
    }
    // The target mapping on its own, on the raw input.
    std::string path;
    (void)http::target_to_path(input, path);
    return 0;
}
