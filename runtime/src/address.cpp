// Parsing and formatting socket addresses. Nothing here blocks: only numeric forms are parsed
// (inet_pton), and an IPv6 scope name costs one if_nametoindex (an ioctl on a local socket).
#include <tram/address.hpp>

#include <tram/error.hpp>

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace tram {
namespace {

[[noreturn]] void bad_address(std::string_view text, std::string_view why) {
    std::string what = "parse address \"";
    what += text;
    what += '"';
    throw_error(EINVAL, what, why);
}

// A decimal port, 0..65535, digits only.
bool parse_port(std::string_view digits, std::uint16_t& port) noexcept {
    if (digits.empty() || digits.size() > 5) return false;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

constexpr std::size_t max_unix_path = sizeof(sockaddr_un::sun_path) - 1;

} // namespace

socket_address socket_address::ipv4(std::string_view ip, std::uint16_t port) {
    socket_address a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.storage_);
    const std::string text(ip);
    if (::inet_pton(AF_INET, text.c_str(), &in.sin_addr) != 1) {
        bad_address(ip, "not a numeric IPv4 address");
    }
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    a.length_ = sizeof(sockaddr_in);
    return a;
}

socket_address socket_address::ipv6(std::string_view ip, std::uint16_t port) {
    socket_address a;
    auto& in6 = reinterpret_cast<sockaddr_in6&>(a.storage_);
    std::string_view host = ip;
    std::uint32_t scope = 0;
    if (const auto percent = ip.find('%'); percent != std::string_view::npos) {
        host = ip.substr(0, percent);
        const std::string_view zone = ip.substr(percent + 1);
        const auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope);
        if (zone.empty()) bad_address(ip, "empty IPv6 scope after '%'");
        if (ec != std::errc{} || end != zone.data() + zone.size()) {
            scope = ::if_nametoindex(std::string(zone).c_str());
            if (scope == 0) bad_address(ip, "unknown network interface in the IPv6 scope");
        }
    }
    const std::string text(host);
    if (::inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) != 1) {
        bad_address(ip, "not a numeric IPv6 address");
    }
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    in6.sin6_scope_id = scope;
    a.length_ = sizeof(sockaddr_in6);
    return a;
}

socket_address socket_address::unix_path(std::string_view path) {
    if (path.empty()) bad_address(path, "empty Unix socket path");
    const bool abstract = path.front() == '@';
    if (path.size() > max_unix_path) {
        bad_address(path,
                    "Unix socket path longer than " + std::to_string(max_unix_path) + " bytes");
    }
    if (!abstract && path.find('\0') != std::string_view::npos) {
        bad_address(path, "NUL byte inside a Unix socket path");
    }
    socket_address a;
    auto& un = reinterpret_cast<sockaddr_un&>(a.storage_);
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    if (abstract) {
        // The kernel takes an abstract name's length from addrlen: no terminating NUL.
        un.sun_path[0] = '\0';
        a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    } else {
        a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    }
    return a;
}

socket_address socket_address::parse(std::string_view text) {
    if (text.empty()) bad_address(text, "empty address");
    if (text.front() == '/' || text.front() == '@') return unix_path(text);
    if (text.starts_with("unix:")) return unix_path(text.substr(5));

    std::string_view host;
    std::string_view port_text;
    const bool bracketed = text.front() == '[';
    if (bracketed) {
        const auto close = text.find(']');
        if (close == std::string_view::npos) bad_address(text, "missing ']' after an IPv6 address");
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            bad_address(text, "expected ':port' after ']'");
        }
        port_text = rest.substr(1);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) bad_address(text, "expected host:port");
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            bad_address(text, "an IPv6 address needs brackets: [address]:port");
        }
    }
    std::uint16_t port = 0;
    if (!parse_port(port_text, port)) bad_address(text, "port is not a number from 0 to 65535");
    if (host.empty()) bad_address(text, "empty host");
    if (bracketed) {
        try {
            return ipv6(host, port);
        } catch (const error&) {
            bad_address(text, "not a numeric IPv6 address");
        }
    }
    socket_address a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.storage_);
    if (::inet_pton(AF_INET, std::string(host).c_str(), &in.sin_addr) != 1) {
        bad_address(text, "not a numeric IPv4 address (host names need resolve())");
    }
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    a.length_ = sizeof(sockaddr_in);
    return a;
}

socket_address socket_address::loopback_v4(std::uint16_t port) noexcept {
    socket_address a = any_v4(port);
    reinterpret_cast<sockaddr_in&>(a.storage_).sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

socket_address socket_address::loopback_v6(std::uint16_t port) noexcept {
    socket_address a = any_v6(port);
    reinterpret_cast<sockaddr_in6&>(a.storage_).sin6_addr = in6addr_loopback;
    return a;
}

socket_address socket_address::any_v4(std::uint16_t port) noexcept {
    socket_address a;
    auto& in = reinterpret_cast<sockaddr_in&>(a.storage_);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(INADDR_ANY);
    a.length_ = sizeof(sockaddr_in);
    return a;
}

socket_address socket_address::any_v6(std::uint16_t port) noexcept {
    socket_address a;
    auto& in6 = reinterpret_cast<sockaddr_in6&>(a.storage_);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    in6.sin6_addr = in6addr_any;
    a.length_ = sizeof(sockaddr_in6);
    return a;
}

socket_address socket_address::from(const sockaddr* address, socklen_t length) {
    if (length > sizeof(sockaddr_storage)) {
        throw_error(EINVAL, "socket_address::from",
                    "address length " + std::to_string(length) + " exceeds sockaddr_storage");
    }
    socket_address a;
    if (length == 0 || address == nullptr) return a;
    std::memcpy(&a.storage_, address, length);
    a.length_ = length;
    return a;
}

std::uint16_t socket_address::port() const noexcept {
    switch (family()) {
    case AF_INET:
        return ntohs(reinterpret_cast<const sockaddr_in&>(storage_).sin_port);
    case AF_INET6:
        return ntohs(reinterpret_cast<const sockaddr_in6&>(storage_).sin6_port);
    default:
        return 0;
    }
}

socket_address socket_address::with_port(std::uint16_t port) const noexcept {
    socket_address a = *this;
    if (is_ipv4()) reinterpret_cast<sockaddr_in&>(a.storage_).sin_port = htons(port);
    if (is_ipv6()) reinterpret_cast<sockaddr_in6&>(a.storage_).sin6_port = htons(port);
    return a;
}

std::string socket_address::to_string() const {
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
    switch (family()) {
    case AF_INET: {
        const auto& in = reinterpret_cast<const sockaddr_in&>(storage_);
        ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
        return std::string(text) + ':' + std::to_string(port());
    }
    case AF_INET6: {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage_);
        ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
        std::string out = "[";
        out += text;
        if (in6.sin6_scope_id != 0) {
            char name[IF_NAMESIZE] = {};
            out += '%';
            out += ::if_indextoname(in6.sin6_scope_id, name) != nullptr
                       ? std::string(name)
                       : std::to_string(in6.sin6_scope_id);
        }
        return out + "]:" + std::to_string(port());
    }
    case AF_UNIX: {
        const auto& un = reinterpret_cast<const sockaddr_un&>(storage_);
        const std::size_t header = offsetof(sockaddr_un, sun_path);
        if (length_ <= header) return "(unnamed)";
        std::size_t n = std::min<std::size_t>(length_ - header, sizeof(un.sun_path));
        if (un.sun_path[0] == '\0') {
            // Abstract: every byte of the name counts, NULs included; show them as '@'.
            std::string out(un.sun_path, n);
            std::replace(out.begin(), out.end(), '\0', '@');
            return out;
        }
        n = ::strnlen(un.sun_path, n);
        // A relative path carries the "unix:" that parse needs to tell it from a host name.
        std::string out = un.sun_path[0] == '/' ? std::string() : std::string("unix:");
        return out.append(un.sun_path, n);
    }
    case AF_UNSPEC:
        return "(none)";
    default:
        return "(address family " + std::to_string(family()) + ")";
    }
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
    return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

} // namespace tram
