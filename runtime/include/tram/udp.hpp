// UDP over IPv4 and IPv6.
#pragma once

#include <tram/address.hpp>
#include <tram/socket.hpp>

namespace tram {

/// A UDP socket: `send_to`/`recv_from` any address, or after `connect` send/recv with one
/// peer; sendmsg/recvmsg for control messages and scatter/gather.
class udp_socket : public datagram_socket {
public:
    udp_socket() noexcept = default;
    explicit udp_socket(descriptor fd, socket_address name = {}) noexcept
        : datagram_socket(std::move(fd), std::move(name)) {}

    /// A socket bound to `local` (port 0: the kernel picks one; `name()` tells which).
    [[nodiscard]] static udp_socket bind(const socket_address& local) {
        udp_socket s(open_bound(local.family(), SOCK_DGRAM, local));
        s.name_ = s.local_address();
        return s;
    }
    /// An unbound socket of `family` (AF_INET or AF_INET6); the first send binds it.
    [[nodiscard]] static udp_socket open(int family = AF_INET) {
        return udp_socket(open_bound(family, SOCK_DGRAM, {}));
    }
};

} // namespace tram
