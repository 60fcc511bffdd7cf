#include "http_response.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace http {
namespace {

void append_number(std::string& out, std::uint64_t value) {
    char digits[20];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, end);
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != b[i]) return false;
    }
    return true;
}

struct media_type {
    std::string_view extension; // lower case
    std::string_view type;
};

// The common types of a static site; text types say their charset, as nginx's defaults do not,
// because browsers otherwise guess.
constexpr media_type media_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
};

} // namespace

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

std::string_view content_type_for(std::string_view path) noexcept {
    const std::size_t slash = path.rfind('/');
    const std::size_t dot = path.rfind('.');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
        return "application/octet-stream";
    }
    const std::string_view extension = path.substr(dot + 1);
    for (const media_type& m : media_types) {
        if (iequals(extension, m.extension)) return m.type;
    }
    return "application/octet-stream";
}

std::string_view date_cache::now() {
    const std::time_t t = std::time(nullptr); // vDSO: no system call
    if (t != second_) {
        second_ = t;
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        // strftime's %a and %b follow the locale; HTTP wants the English names.
        static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        const int n = std::snprintf(text_, sizeof text_, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        size_ = n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    return {text_, size_};
}

void append_head(std::string& out, int status, std::string_view date, const head_fields& fields) {
    out += "HTTP/1.1 ";
    append_number(out, static_cast<std::uint64_t>(status));
    out += ' ';
    out += reason_phrase(status);
    out += "\r\nServer: tram\r\nDate: ";
    out += date;
    if (!fields.content_type.empty()) {
        out += "\r\nContent-Type: ";
        out += fields.content_type;
    }
    out += "\r\nContent-Length: ";
    append_number(out, fields.content_length);
    if (!fields.content_range.empty()) {
        out += "\r\nContent-Range: ";
        out += fields.content_range;
    }
    if (fields.accept_ranges) out += "\r\nAccept-Ranges: bytes";
    if (!fields.allow.empty()) {
        out += "\r\nAllow: ";
        out += fields.allow;
    }
    if (!fields.keep_alive) out += "\r\nConnection: close";
    out += "\r\n\r\n";
}

void append_error(std::string& out, int status, std::string_view date, bool keep_alive, bool body,
                  std::string_view allow) {
    const std::string_view reason = reason_phrase(status);
    head_fields fields;
    fields.content_type = "text/plain; charset=utf-8";
    fields.content_length = 4 + reason.size() + 1; // "404 Not Found\n"
    fields.keep_alive = keep_alive;
    fields.allow = allow;
    append_head(out, status, date, fields);
    if (!body) return;
    append_number(out, static_cast<std::uint64_t>(status));
    out += ' ';
    out += reason;
    out += '\n';
}

} // namespace http
