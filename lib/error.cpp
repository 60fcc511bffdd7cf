#include <tram/error.hpp>

#include <cerrno>
#include <cstring>

namespace tram {

std::string_view errno_name(int errnum) noexcept {
    switch (errnum) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ETIME: return "ETIME";
    case EBADR: return "EBADR";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOTSOCK: return "ENOTSOCK";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTOTYPE: return "EPROTOTYPE";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNABORTED: return "ECONNABORTED";
    case ECONNRESET: return "ECONNRESET";
    case ENOBUFS: return "ENOBUFS";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case ECANCELED: return "ECANCELED";
    case EOWNERDEAD: return "EOWNERDEAD";
    // io_uring's own answers: EBADFD for a ring set up disabled (R_DISABLED) and not yet
    // enabled, ENOTTY/ENXIO for a descriptor that is no ring, ESHUTDOWN for a closed socket.
    case EBADFD: return "EBADFD";
    case ENOTTY: return "ENOTTY";
    case ESHUTDOWN: return "ESHUTDOWN";
    case EHOSTDOWN: return "EHOSTDOWN";
    case ENOEXEC: return "ENOEXEC";
    case EDOM: return "EDOM";
    case EDEADLK: return "EDEADLK";
    case ENOLCK: return "ENOLCK";
    case ESTALE: return "ESTALE";
    case EDQUOT: return "EDQUOT";
    case EPROTO: return "EPROTO";
    case EBADMSG: return "EBADMSG";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    default: return "E?";
    }
}

std::string describe_error(int errnum, std::string_view operation, std::string_view detail) {
    std::string message(operation);
    message += ": ";
    if (detail.empty()) {
        message += std::strerror(errnum);
    } else {
        message += detail;
    }
    message += " (";
    message += errno_name(errnum);
    message += ')';
    return message;
}

void throw_error(int errnum, std::string_view operation, std::string_view detail) {
    throw error(errnum, describe_error(errnum, operation, detail));
}

} // namespace tram
