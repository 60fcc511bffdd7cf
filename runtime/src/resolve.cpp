// Name resolution on the blocking pool, its answer delivered through the ring (see resolve.hpp).
#include <tram/resolve.hpp>

#include <tram/blocking_pool.hpp>
#include <tram/error.hpp>

#include <arpa/inet.h>
#include <netdb.h>

#include <cerrno>
#include <string>

namespace tram {
namespace {

// What getaddrinfo answered, handed from the pool thread to the awaiting coroutine.
struct lookup {
    std::vector<socket_address> addresses;
    int gai_error = 0;
    int sys_error = 0;
};

lookup run_lookup(const std::string& host, std::uint16_t port, resolve_options options) {
    lookup l;
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = options.socket_type;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    l.gai_error = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    l.sys_error = errno;
    if (l.gai_error != 0) return l;
    try {
        for (const addrinfo* a = found; a != nullptr; a = a->ai_next)
            l.addresses.push_back(socket_address::from(a->ai_addr, a->ai_addrlen).with_port(port));
    } catch (...) {
        ::freeaddrinfo(found);
        throw;
    }
    ::freeaddrinfo(found);
    return l;
}

[[noreturn]] void throw_lookup_error(const lookup& l, const std::string& host, std::uint16_t port) {
    int errnum = EINVAL;
    switch (l.gai_error) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        errnum = ENOENT;
        break;
    case EAI_AGAIN:
        errnum = EAGAIN;
        break;
    case EAI_MEMORY:
        errnum = ENOMEM;
        break;
    case EAI_FAMILY:
        errnum = EAFNOSUPPORT;
        break;
    case EAI_SYSTEM:
        errnum = l.sys_error != 0 ? l.sys_error : EIO;
        break;
    default:
        break;
    }
    const std::string what = "resolve " + host + ':' + std::to_string(port);
    if (l.gai_error == EAI_SYSTEM) throw_error(errnum, what);
    throw_error(errnum, what, ::gai_strerror(l.gai_error));
}

// A numeric host needs no lookup (and no thread).
bool parse_numeric(const std::string& host, std::uint16_t port, int family,
                   std::vector<socket_address>& out) {
    in6_addr probe{};
    if (family != AF_INET6 && ::inet_pton(AF_INET, host.c_str(), &probe) == 1) {
        out.push_back(socket_address::ipv4(host, port));
        return true;
    }
    if (family != AF_INET && host.find(':') != std::string::npos) {
        try {
            out.push_back(socket_address::ipv6(host, port));
            return true;
        } catch (const error&) {
            return false;
        }
    }
    return false;
}

} // namespace

task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                          resolve_options options) {
    std::vector<socket_address> numeric;
    if (parse_numeric(host, port, options.family, numeric)) co_return numeric;

    // By value: a cancelled resolve's frame is gone while the lookup still runs. Made before
    // the co_await statement: GCC 12 mishandles a capturing lambda temporary inside one.
    task<lookup> on_pool = default_blocking_pool().run(
        [host, port, options] { return run_lookup(host, port, options); });
    lookup found;
    try {
        found = co_await std::move(on_pool);
    } catch (const error& e) {
        throw_error(e.errnum(), "resolve " + host + ':' + std::to_string(port));
    }
    if (found.gai_error != 0) throw_lookup_error(found, host, port);
    co_return std::move(found.addresses);
}

} // namespace tram
