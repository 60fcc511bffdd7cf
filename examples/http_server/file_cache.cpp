#include "file_cache.hpp"

#include "http_response.hpp"

#include <tram/error.hpp>

#include <fcntl.h>
#include <linux/openat2.h>

#include <cerrno>
#include <span>
#include <utility>

namespace http_server {
namespace {

std::int64_t nanoseconds(const statx_timestamp& t) noexcept {
    return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

int status_of(int errnum) noexcept {
    switch (errnum) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case EXDEV: // RESOLVE_BENEATH: the path would leave the root
    case ENAMETOOLONG:
    case ENXIO:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
}

} // namespace

std::shared_ptr<const cached_file>
file_cache::find_fresh(const std::string& path, std::chrono::steady_clock::time_point now) const {
    const auto it = entries_.find(path);
    if (it == entries_.end() || now - it->second->checked >= options_.ttl) return nullptr;
    return it->second;
}

tram::task<lookup_result> file_cache::load(std::string path) {
    open_how how{};
    // O_NONBLOCK: opening a FIFO must not wait for a writer (the open would hold an io-wq
    // worker and the connection for ever); it is cleared below for regular files, whose reads
    // through io_uring would otherwise fail with EAGAIN when the page cache misses.
    how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    auto fresh = std::make_shared<cached_file>();
    try {
        fresh->file = co_await tram::file::open(path, how, root_fd_);
        const tram::file_status status = co_await fresh->file.stat();
        if (!status.is_regular()) {
            entries_.erase(path);
            co_return lookup_result{404, nullptr};
        }
        const struct statx& raw = status.raw();
        fresh->size = status.size();
        fresh->device = (std::uint64_t{raw.stx_dev_major} << 32) | raw.stx_dev_minor;
        fresh->inode = raw.stx_ino;
        fresh->mtime_ns = nanoseconds(raw.stx_mtime);
        fresh->ctime_ns = nanoseconds(raw.stx_ctime);
        fresh->checked = std::chrono::steady_clock::now();
    } catch (const tram::error& e) {
        entries_.erase(path);
        co_return lookup_result{status_of(e.errnum()), nullptr};
    }

    const auto it = entries_.find(path);
    if (it != entries_.end()) {
        cached_file& old = *it->second;
        if (old.device == fresh->device && old.inode == fresh->inode && old.size == fresh->size &&
            old.mtime_ns == fresh->mtime_ns && old.ctime_ns == fresh->ctime_ns) {
            // Unchanged: keep what we have (its content, or its open descriptor), checked now.
            old.checked = fresh->checked;
            co_return lookup_result{200, it->second};
        }
        memory_ -= old.content.size();
        entries_.erase(it);
    }

    // A plain system call, once per look-up (see O_NONBLOCK above); it never blocks.
    (void)::fcntl(fresh->file.fd(), F_SETFL, 0);
    fresh->content_type = http::content_type_for(path);
    if (fresh->size <= options_.max_memory_file) {
        try {
            fresh->content.resize(fresh->size);
            co_await fresh->file.read_exact(std::as_writable_bytes(std::span(fresh->content)), 0);
        } catch (const tram::error& e) {
            // Shrunk while being read: the next request will look again.
            co_return lookup_result{e.errnum() == ENODATA ? 404 : status_of(e.errnum()), nullptr};
        }
        fresh->in_memory = true;
        fresh->file = tram::file(); // closed through the ring: the content is all we need
    }
    if (entries_.size() >= options_.max_entries ||
        memory_ + fresh->content.size() > options_.max_memory_total) {
        // Starting afresh is crude but bounded; a real deployment's hot set fits the bounds.
        entries_.clear();
        memory_ = 0;
    }
    memory_ += fresh->content.size();
    entries_.emplace(std::move(path), fresh);
    co_return lookup_result{200, std::move(fresh)};
}

} // namespace http_server
