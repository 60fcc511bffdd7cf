// Socket addresses: IPv4, IPv6 and Unix (path or abstract), parsed from and formatted to text.
#pragma once

#include <tram/error.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace tram {

/// A socket address of any family tram uses (AF_INET, AF_INET6, AF_UNIX), by value: a
/// sockaddr_storage and its length, ready for bind/connect/sendmsg and filled by
/// accept/recvmsg. The default value is empty (AF_UNSPEC).
///
/// Text forms, as `parse` reads them and `to_string` writes them:
///   "127.0.0.1:8080"        IPv4, numeric
///   "[::1]:8080"            IPv6, numeric, in brackets; "[fe80::1%eth0]:80" with a scope
///   "/run/app.sock"         Unix socket at a path ("unix:relative/path" for a relative one,
///                           both ways: to_string writes the prefix too)
///   "@name"                 Linux abstract Unix socket (no file; '@' stands for the leading NUL)
/// Host names are not addresses: `resolve` (resolve.hpp) turns them into addresses.
class socket_address {
public:
    socket_address() noexcept { storage_.ss_family = AF_UNSPEC; }

    /// Parses one of the forms above. Bad input throws tram::error with EINVAL, whose message
    /// quotes the input and says what is wrong:
    /// `parse address "localhost:80": not a numeric IPv4 address (host names need resolve())
    /// (EINVAL)`.
    [[nodiscard]] static socket_address parse(std::string_view text);
    /// A numeric IPv4 address ("10.0.0.1") and a port.
    [[nodiscard]] static socket_address ipv4(std::string_view ip, std::uint16_t port);
    /// A numeric IPv6 address ("::1", "fe80::1%lo"; no brackets) and a port.
    [[nodiscard]] static socket_address ipv6(std::string_view ip, std::uint16_t port);
    /// A Unix socket path, or with a leading '@' an abstract name. At most 107 bytes.
    [[nodiscard]] static socket_address unix_path(std::string_view path);
    /// 127.0.0.1:port, [::1]:port, 0.0.0.0:port, [::]:port.
    [[nodiscard]] static socket_address loopback_v4(std::uint16_t port = 0) noexcept;
    [[nodiscard]] static socket_address loopback_v6(std::uint16_t port = 0) noexcept;
    [[nodiscard]] static socket_address any_v4(std::uint16_t port = 0) noexcept;
    [[nodiscard]] static socket_address any_v6(std::uint16_t port = 0) noexcept;
    /// A copy of a raw address (EINVAL when `length` exceeds sockaddr_storage).
    [[nodiscard]] static socket_address from(const sockaddr* address, socklen_t length);

    /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
    [[nodiscard]] bool is_ipv4() const noexcept { return family() == AF_INET; }
    [[nodiscard]] bool is_ipv6() const noexcept { return family() == AF_INET6; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
    /// The port of an IP address (host byte order), 0 for other families.
    [[nodiscard]] std::uint16_t port() const noexcept;
    /// A copy with another port (IP addresses only; others are returned unchanged).
    [[nodiscard]] socket_address with_port(std::uint16_t port) const noexcept;

    /// For the system calls and SQEs.
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    [[nodiscard]] socklen_t size() const noexcept { return length_; }
    /// Room for any address: what accept/recvmsg may write into `data()`.
    [[nodiscard]] static constexpr socklen_t capacity() noexcept {
        return sizeof(sockaddr_storage);
    }
    /// Where accept/getsockname store the length they wrote (start it at `capacity()`).
    [[nodiscard]] socklen_t* size_ptr() noexcept { return &length_; }

    /// "127.0.0.1:80", "[::1]:80", "/path", "@name", "(unnamed)" for an unbound Unix socket,
    /// "(none)" when empty.
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const socket_address& a, const socket_address& b) noexcept;

private:
    sockaddr_storage storage_{};
    socklen_t length_ = 0;
};

} // namespace tram
