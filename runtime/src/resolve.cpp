// Name resolution on a helper thread, its answer delivered through the ring (see resolve.hpp).
#include <tram/resolve.hpp>

#include <tram/error.hpp>
#include <tram/operation.hpp>
#include <tram/sqe.hpp>
#include <tram/unique_fd.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

namespace tram {
namespace {

// What the helper thread and the awaiting coroutine share. The helper writes `addresses` and
// `gai_error`/`sys_error`, then sets `done` (release) and writes the eventfd; the coroutine
// reads them only after its read of the eventfd completed and `done` is seen (acquire).
struct lookup {
    std::string host;
    std::uint16_t port;
    resolve_options options;
    unique_fd event;
    std::uint64_t counter = 0; // where the ring's read of the eventfd lands
    std::vector<socket_address> addresses;
    int gai_error = 0;
    int sys_error = 0;
    std::atomic<bool> done{false};
};

void run_lookup(lookup& l) noexcept {
    addrinfo hints{};
    hints.ai_family = l.options.family;
    hints.ai_socktype = l.options.socket_type;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    l.gai_error = ::getaddrinfo(l.host.c_str(), nullptr, &hints, &found);
    l.sys_error = errno;
    if (l.gai_error == 0) {
        try {
            for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
                l.addresses.push_back(
                    socket_address::from(a->ai_addr, a->ai_addrlen).with_port(l.port));
            }
        } catch (...) {
            l.gai_error = EAI_MEMORY;
        }
        ::freeaddrinfo(found);
    }
    l.done.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    (void)!::write(l.event.get(), &one, sizeof(one));
}

[[noreturn]] void throw_lookup_error(const lookup& l) {
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
    const std::string what = "resolve " + l.host + ':' + std::to_string(l.port);
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

    auto shared = std::make_shared<lookup>();
    shared->host = std::move(host);
    shared->port = port;
    shared->options = options;
    const int fd = ::eventfd(0, EFD_CLOEXEC);
    if (fd < 0) throw_error(errno, "resolve " + shared->host, "creating its eventfd");
    shared->event.reset(fd);
    // The thread holds its own reference: it may outlive a cancelled coroutine.
    std::thread([shared] { run_lookup(*shared); }).detach();

    lookup& l = *shared;
    const io_result r = co_await make_operation([&l](io_uring_sqe& sqe) noexcept {
        prep_read(sqe, l.event.get(),
                  std::span(reinterpret_cast<std::byte*>(&l.counter), sizeof(l.counter)),
                  current_position);
    });
    if (!r.ok()) {
        throw_error(r.error(), "resolve " + l.host + ':' + std::to_string(l.port));
    }
    if (!l.done.load(std::memory_order_acquire)) {
        throw_error(EIO, "resolve " + l.host, "woken before the lookup finished");
    }
    if (l.gai_error != 0) throw_lookup_error(l);
    co_return std::move(l.addresses);
}

} // namespace tram
