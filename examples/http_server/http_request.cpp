#include "http_request.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace http {
namespace {

// RFC 9110 5.6.2 tchar.
constexpr std::array<bool, 256> make_token_table() {
    std::array<bool, 256> table{};
    for (int c = '0'; c <= '9'; ++c)
        table[c] = true;
    for (int c = 'a'; c <= 'z'; ++c)
        table[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c)
        table[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        table[static_cast<unsigned char>(c)] = true;
    return table;
}
constexpr std::array<bool, 256> token_table = make_token_table();

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return token_table[static_cast<unsigned char>(c)]; });
}

// Field values and targets: visible characters, and for values also SP, HT and obs-text.
bool is_target_char(unsigned char c) noexcept { return c > 0x20 && c != 0x7f; }
bool is_value_char(unsigned char c) noexcept { return c >= 0x20 ? c != 0x7f : c == '\t'; }

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// The next line of `rest` without its terminator (CRLF or LF), or false when `rest` holds no
// whole line. A CR anywhere else is malformed, which the callers see as a bad character.
bool next_line(std::string_view& rest, std::string_view& line) noexcept {
    const std::size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) return false;
    line = rest.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    rest.remove_prefix(lf + 1);
    return true;
}

parse_status parse_request_line(std::string_view line, request& out) noexcept {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return parse_status::bad_request;
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return parse_status::bad_request;
    out.method = line.substr(0, sp1);
    out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(out.method) || out.target.empty()) return parse_status::bad_request;
    if (!std::all_of(out.target.begin(), out.target.end(),
                     [](char c) { return is_target_char(static_cast<unsigned char>(c)); })) {
        return parse_status::bad_request;
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        return parse_status::bad_request;
    }
    if (version[5] != '1') {
        return version[5] == '0' ? parse_status::bad_request : parse_status::version_not_supported;
    }
    // HTTP/1.2 and later minors are HTTP/1.1 to us (RFC 9110 2.5).
    out.minor_version = version[7] == '0' ? 0 : 1;
    out.keep_alive = out.minor_version == 1;
    return parse_status::complete;
}

// Connection: a comma-separated list of options (RFC 9110 7.6.1).
void apply_connection(std::string_view value, int minor_version, bool& keep_alive) noexcept {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view option = trim(value.substr(0, comma));
        if (iequals(option, "close")) {
            keep_alive = false;
            return; // close wins over anything else
        }
        if (iequals(option, "keep-alive") && minor_version == 0) keep_alive = true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
}

// The last non-empty element of a comma-separated list, trimmed; empty when there is none.
std::string_view last_element(std::string_view value) noexcept {
    std::string_view last;
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view element = trim(value.substr(0, comma));
        if (!element.empty()) last = element;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return last;
}

bool parse_decimal(std::string_view s, std::uint64_t& value) noexcept {
    if (s.empty() || s.size() > 19) return false; // 19 digits always fit in 64 bits
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    return ec == std::errc() && end == s.data() + s.size();
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

parse_status parse_request(std::string_view input, std::size_t max_head_size,
                           request& out) noexcept {
    out = request{};
    // Leading empty lines (a client's CRLF after a previous body) are skipped but count
    // against the cap, so that a stream of them cannot keep the connection busy for ever.
    std::string_view rest = input;
    std::string_view line;
    for (;;) {
        if (input.size() - rest.size() > max_head_size) return parse_status::header_too_large;
        const std::string_view before = rest;
        if (!next_line(rest, line)) {
            return input.size() > max_head_size ? parse_status::header_too_large
                                                : parse_status::incomplete;
        }
        if (!line.empty()) {
            rest = before;
            break;
        }
    }
    // Find the end of the head before looking at it, so that the cap applies to whole heads.
    std::size_t end = std::string_view::npos;
    for (std::size_t at = rest.find('\n'); at != std::string_view::npos;
         at = rest.find('\n', at + 1)) {
        const std::size_t next = at + 1;
        if (next < rest.size() && rest[next] == '\n') {
            end = next + 1;
            break;
        }
        if (next + 1 < rest.size() && rest[next] == '\r' && rest[next + 1] == '\n') {
            end = next + 2;
            break;
        }
        if (input.size() - rest.size() + next > max_head_size) break;
    }
    const std::size_t skipped = input.size() - rest.size();
    if (end == std::string_view::npos) {
        return input.size() > max_head_size ? parse_status::header_too_large
                                            : parse_status::incomplete;
    }
    if (skipped + end > max_head_size) return parse_status::header_too_large;
    out.head_size = skipped + end;
    std::string_view head = rest.substr(0, end);

    (void)next_line(head, line);
    if (const parse_status s = parse_request_line(line, out); s != parse_status::complete) {
        return s;
    }
    bool has_host = false;
    bool has_length = false;
    bool has_transfer_encoding = false;
    std::uint64_t content_length = 0;
    while (next_line(head, line) && !line.empty()) {
        // No whitespace before the colon, no obs-fold (RFC 9112 5.1, 5.2): both are errors,
        // since proxies in front of a server could read them differently (request smuggling).
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return parse_status::bad_request;
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (!is_token(name)) return parse_status::bad_request;
        if (!std::all_of(value.begin(), value.end(),
                         [](char c) { return is_value_char(static_cast<unsigned char>(c)); })) {
            return parse_status::bad_request;
        }
        if (iequals(name, "host")) {
            if (has_host) return parse_status::bad_request; // RFC 9112 3.2: exactly one
            has_host = true;
        } else if (iequals(name, "connection")) {
            apply_connection(value, out.minor_version, out.keep_alive);
        } else if (iequals(name, "content-length")) {
            std::uint64_t length = 0;
            if (!parse_decimal(value, length)) return parse_status::bad_request;
            if (has_length && length != content_length) return parse_status::bad_request;
            has_length = true;
            content_length = length;
        } else if (iequals(name, "transfer-encoding")) {
            // Several fields make one list: the final coding is that of the last non-empty one.
            has_transfer_encoding = true;
            if (const std::string_view last = last_element(value); !last.empty())
                out.chunked = iequals(last, "chunked");
        } else if (iequals(name, "range")) {
            out.range = value;
        }
    }
    if (has_length && has_transfer_encoding) return parse_status::bad_request;
    // A final coding other than chunked leaves no way to find the end of the body.
    if (has_transfer_encoding && !out.chunked) return parse_status::bad_request;
    if (out.minor_version == 1 && !has_host) return parse_status::bad_request;
    out.has_body = has_transfer_encoding || content_length > 0;
    out.content_length = content_length;
    return parse_status::complete;
}

target_status target_to_path(std::string_view target, std::string& path) {
    path.clear();
    // absolute-form (RFC 9112 3.2.2) from a client that thinks we are a proxy: skip the
    // scheme and authority; the Host header is not checked (one site per server).
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
            target.remove_prefix(scheme.size());
            const std::size_t slash = target.find('/');
            target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
            break;
        }
    }
    if (target.empty() || target.front() != '/') return target_status::bad_request;
    target = target.substr(0, target.find_first_of("?#"));

    // Segment by segment: each is decoded, then judged, so that "%2e%2e" is a ".." too, and
    // an encoded '/' ("%2f") cannot join two segments into a ".." that was not checked.
    std::string segment;
    bool directory = true; // the path so far names a directory (ends in '/')
    std::size_t at = 0;
    while (at < target.size()) {
        const std::size_t slash = target.find('/', at);
        const std::string_view raw = target.substr(
            at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
        at = slash == std::string_view::npos ? target.size() : slash + 1;
        segment.clear();
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != '%') {
                segment += raw[i];
                continue;
            }
            if (i + 2 >= raw.size()) return target_status::bad_request;
            const int hi = hex_value(raw[i + 1]);
            const int lo = hex_value(raw[i + 2]);
            if (hi < 0 || lo < 0) return target_status::bad_request;
            const char c = static_cast<char>(hi * 16 + lo);
            if (c == '\0') return target_status::bad_request;
            if (c == '/') return target_status::forbidden; // an encoded separator: refused
            segment += c;
            i += 2;
        }
        if (segment.empty() || segment == ".") {
            directory = true;
            continue;
        }
        if (segment == "..") return target_status::forbidden;
        if (!path.empty()) path += '/';
        path += segment;
        directory = slash != std::string_view::npos;
    }
    if (directory) {
        if (!path.empty()) path += '/';
        path += "index.html";
    }
    return target_status::ok;
}

byte_range parse_range(std::string_view value, std::uint64_t size) noexcept {
    constexpr std::string_view unit = "bytes=";
    if (value.size() < unit.size() || !iequals(value.substr(0, unit.size()), unit)) return {};
    std::string_view spec = trim(value.substr(unit.size()));
    if (spec.find(',') != std::string_view::npos) return {}; // several ranges: whole file
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return {};
    const std::string_view first_text = trim(spec.substr(0, dash));
    const std::string_view last_text = trim(spec.substr(dash + 1));
    byte_range r;
    if (first_text.empty()) {
        // A suffix: the last N bytes.
        std::uint64_t suffix = 0;
        if (!parse_decimal(last_text, suffix)) return {};
        if (suffix == 0 || size == 0) return {byte_range::kind::unsatisfiable, 0, 0};
        r.first = suffix >= size ? 0 : size - suffix;
        r.last = size - 1;
        r.what = byte_range::kind::satisfiable;
        return r;
    }
    std::uint64_t first = 0;
    if (!parse_decimal(first_text, first)) return {};
    std::uint64_t last = ~std::uint64_t{0};
    if (!last_text.empty() && !parse_decimal(last_text, last)) return {};
    if (last < first) return {}; // invalid: ignored
    if (first >= size) return {byte_range::kind::unsatisfiable, 0, 0};
    r.first = first;
    r.last = std::min(last, size - 1);
    r.what = byte_range::kind::satisfiable;
    return r;
}

} // namespace http
