// liburing_echo: a fair, fast single-threaded liburing TCP echo server.
//
// The io_uring peer tram's echo_server is measured against, written the way a competent
// liburing user would: one ring set up with SINGLE_ISSUER | DEFER_TASKRUN (falling back to
// COOP_TASKRUN, then to no flags, on older kernels), a registered ring fd, one multishot accept,
// one multishot recv per connection drawing from a provided-buffer ring, the echo sent straight
// from the provided buffer (no copy) which goes back to the buffer ring when its send completes,
// and one io_uring_submit_and_wait per loop turn that submits everything the turn prepared.
//
// Sends on one connection are issued one at a time (a queue of received buffers per
// connection), because two sends in flight on one stream socket may interleave when the first
// is short.
//
//   liburing_echo [--host 127.0.0.1] [--port 7000]

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "peer_options.hpp"

namespace {

constexpr unsigned sq_entries = 2048;
constexpr unsigned cq_entries = 16384;
constexpr unsigned buffer_count = 4096; // a power of two, as the buffer ring requires
constexpr unsigned buffer_size = 4096;
constexpr int buffer_group = 0;

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

constexpr const char* name = "liburing_echo";

[[noreturn]] void die(const char* what, int err) { peer::die(name, what, err); }

enum class op_kind : std::uint8_t { accept = 1, recv, send, close };

constexpr std::uint64_t make_user_data(op_kind kind, int fd) noexcept {
    return (static_cast<std::uint64_t>(kind) << 56) | static_cast<std::uint32_t>(fd);
}
constexpr op_kind kind_of(std::uint64_t user_data) noexcept {
    return static_cast<op_kind>(user_data >> 56);
}
constexpr int fd_of(std::uint64_t user_data) noexcept {
    return static_cast<int>(static_cast<std::uint32_t>(user_data));
}

constexpr int no_buffer = -1;

// Received buffers waiting to be echoed form a singly linked list threaded through
// server::next_buffer_, so queueing needs no allocation.
struct connection {
    int queue_head = no_buffer;
    int queue_tail = no_buffer;
    unsigned send_offset = 0; // bytes of the head buffer already sent
    bool open = false;
    bool recv_armed = false;
    bool send_in_flight = false;
    bool closing = false;
    bool waiting_for_buffers = false;
};

class server {
public:
    explicit server(int listen_fd)
        : listen_fd_(listen_fd) {
        setup_ring();
        setup_buffers();
        arm_accept();
    }

    void run() {
        while (!stop_requested) {
            publish_returned_buffers();
            int ret = io_uring_submit_and_wait(&ring_, 1);
            if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
                die("io_uring_submit_and_wait", -ret);
            unsigned head;
            unsigned seen = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                handle(*cqe);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
        }
    }

private:
    void setup_ring() {
        // Strongest first: DEFER_TASKRUN runs completion work only when we wait (6.1+);
        // COOP_TASKRUN avoids interrupting the task for it (5.19+).
        const unsigned flag_sets[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            0,
        };
        int ret = -EINVAL;
        for (unsigned flags : flag_sets) {
            io_uring_params params{};
            params.flags = flags | IORING_SETUP_CQSIZE;
            params.cq_entries = cq_entries;
            ret = io_uring_queue_init_params(sq_entries, &ring_, &params);
            if (ret == 0) break;
            if (ret != -EINVAL) break;
        }
        if (ret < 0) die("io_uring_queue_init_params", -ret);
        io_uring_register_ring_fd(&ring_); // an optimisation only: ignore failure
    }

    void setup_buffers() {
        std::size_t ring_bytes = buffer_count * sizeof(io_uring_buf);
        void* ring_memory =
            ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ring_memory == MAP_FAILED) die("mmap buffer ring", errno);
        buffer_ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
        io_uring_buf_ring_init(buffer_ring_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring_memory);
        reg.ring_entries = buffer_count;
        reg.bgid = buffer_group;
        int ret = io_uring_register_buf_ring(&ring_, &reg, 0);
        if (ret < 0) die("io_uring_register_buf_ring (needs Linux 5.19)", -ret);

        void* data = ::mmap(nullptr, std::size_t{buffer_count} * buffer_size,
                            PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (data == MAP_FAILED) die("mmap buffers", errno);
        buffers_ = static_cast<char*>(data);
        next_buffer_.assign(buffer_count, no_buffer);
        buffer_length_.assign(buffer_count, 0);
        for (unsigned bid = 0; bid < buffer_count; ++bid)
            return_buffer(static_cast<int>(bid));
        publish_returned_buffers();
    }

    char* buffer_address(int bid) noexcept {
        return buffers_ + static_cast<std::size_t>(bid) * buffer_size;
    }

    void return_buffer(int bid) noexcept {
        io_uring_buf_ring_add(buffer_ring_, buffer_address(bid), buffer_size,
                              static_cast<unsigned short>(bid),
                              io_uring_buf_ring_mask(buffer_count), returned_buffers_);
        ++returned_buffers_;
    }

    // Makes this turn's returned buffers visible with one release store, then re-arms the
    // receives that stopped for want of a buffer.
    void publish_returned_buffers() {
        if (returned_buffers_ == 0) return;
        io_uring_buf_ring_advance(buffer_ring_, returned_buffers_);
        returned_buffers_ = 0;
        // Bounded: each starved connection is re-armed once.
        for (int fd : starved_) {
            connection& c = connections_[static_cast<std::size_t>(fd)];
            c.waiting_for_buffers = false;
            if (c.open && !c.closing && !c.recv_armed) arm_recv(fd, c);
        }
        starved_.clear();
    }

    io_uring_sqe* next_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe != nullptr) return sqe;
        // The submission queue is full: hand it to the kernel and take a fresh entry.
        int ret = io_uring_submit(&ring_);
        if (ret < 0) die("io_uring_submit", -ret);
        sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) die("io_uring_get_sqe", EBUSY);
        return sqe;
    }

    void arm_accept() {
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, make_user_data(op_kind::accept, listen_fd_));
    }

    void arm_recv(int fd, connection& c) {
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffer_group;
        io_uring_sqe_set_data64(sqe, make_user_data(op_kind::recv, fd));
        c.recv_armed = true;
    }

    void send_head(int fd, connection& c) {
        int bid = c.queue_head;
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_send(sqe, fd, buffer_address(bid) + c.send_offset,
                           buffer_length_[static_cast<std::size_t>(bid)] - c.send_offset,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, make_user_data(op_kind::send, fd));
        c.send_in_flight = true;
    }

    void handle(const io_uring_cqe& cqe) {
        int fd = fd_of(cqe.user_data);
        switch (kind_of(cqe.user_data)) {
        case op_kind::accept:
            return on_accept(cqe);
        case op_kind::recv:
            return on_recv(fd, cqe);
        case op_kind::send:
            return on_send(fd, cqe);
        case op_kind::close:
            return;
        }
    }

    void on_accept(const io_uring_cqe& cqe) {
        if (!(cqe.flags & IORING_CQE_F_MORE)) arm_accept();
        if (cqe.res < 0) {
            if (cqe.res != -ECONNABORTED && cqe.res != -EINTR)
                std::fprintf(stderr, "liburing_echo: accept: %s\n", std::strerror(-cqe.res));
            return;
        }
        int fd = cqe.res;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (static_cast<std::size_t>(fd) >= connections_.size())
            connections_.resize(static_cast<std::size_t>(fd) * 2 + 1);
        connection& c = connections_[static_cast<std::size_t>(fd)];
        c = connection{};
        c.open = true;
        arm_recv(fd, c);
    }

    void on_recv(int fd, const io_uring_cqe& cqe) {
        connection& c = connections_[static_cast<std::size_t>(fd)];
        if (!(cqe.flags & IORING_CQE_F_MORE)) c.recv_armed = false;
        if (cqe.res > 0) {
            int bid = static_cast<int>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
            buffer_length_[static_cast<std::size_t>(bid)] = static_cast<unsigned>(cqe.res);
            next_buffer_[static_cast<std::size_t>(bid)] = no_buffer;
            if (c.queue_tail == no_buffer) {
                c.queue_head = bid;
            } else {
                next_buffer_[static_cast<std::size_t>(c.queue_tail)] = bid;
            }
            c.queue_tail = bid;
            if (!c.send_in_flight) send_head(fd, c);
            if (!c.recv_armed && !c.closing) arm_recv(fd, c);
            return;
        }
        if (cqe.res == -ENOBUFS) {
            // Every buffer is waiting on a send; re-arm once some come back.
            if (!c.recv_armed && !c.waiting_for_buffers) {
                c.waiting_for_buffers = true;
                starved_.push_back(fd);
            }
            return;
        }
        // End of stream or an error: finish the sends already queued, then close.
        if (cqe.res < 0 && cqe.res != -ECONNRESET)
            std::fprintf(stderr, "liburing_echo: recv: %s\n", std::strerror(-cqe.res));
        c.closing = true;
        if (!c.recv_armed && !c.send_in_flight) close_connection(fd, c);
    }

    void on_send(int fd, const io_uring_cqe& cqe) {
        connection& c = connections_[static_cast<std::size_t>(fd)];
        c.send_in_flight = false;
        if (cqe.res < 0) {
            if (cqe.res != -EPIPE && cqe.res != -ECONNRESET)
                std::fprintf(stderr, "liburing_echo: send: %s\n", std::strerror(-cqe.res));
            drop_queue(c);
            c.closing = true;
            // Ends the multishot recv (it completes with 0), after which we close.
            if (c.recv_armed)
                ::shutdown(fd, SHUT_RDWR);
            else
                close_connection(fd, c);
            return;
        }
        int bid = c.queue_head;
        c.send_offset += static_cast<unsigned>(cqe.res);
        if (c.send_offset < buffer_length_[static_cast<std::size_t>(bid)]) {
            send_head(fd, c); // a short send: the rest, before anything queued after it
            return;
        }
        c.send_offset = 0;
        c.queue_head = next_buffer_[static_cast<std::size_t>(bid)];
        if (c.queue_head == no_buffer) c.queue_tail = no_buffer;
        return_buffer(bid);
        if (c.queue_head != no_buffer) {
            send_head(fd, c);
        } else if (c.closing && !c.recv_armed) {
            close_connection(fd, c);
        }
    }

    void drop_queue(connection& c) {
        // Bounded by buffer_count: each buffer is in at most one queue.
        while (c.queue_head != no_buffer) {
            int bid = c.queue_head;
            c.queue_head = next_buffer_[static_cast<std::size_t>(bid)];
            return_buffer(bid);
        }
        c.queue_tail = no_buffer;
        c.send_offset = 0;
    }

    void close_connection(int fd, connection& c) {
        drop_queue(c);
        c = connection{};
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_close(sqe, fd);
        io_uring_sqe_set_data64(sqe, make_user_data(op_kind::close, fd));
    }

    io_uring ring_{};
    int listen_fd_;
    io_uring_buf_ring* buffer_ring_ = nullptr;
    char* buffers_ = nullptr;
    int returned_buffers_ = 0;
    std::vector<int> next_buffer_;
    std::vector<unsigned> buffer_length_;
    std::vector<connection> connections_;
    std::vector<int> starved_;
};

// Thousands of connections need more descriptors than the usual soft limit of 1024.
void raise_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

} // namespace

int main(int argc, char** argv) {
    const peer::options opts = peer::parse_options(
        argc, argv, name, "A single-threaded liburing TCP echo server (benchmark peer).");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    raise_file_limit();
    int listen_fd = peer::listen_on(opts, name);
    server srv(listen_fd);
    std::fprintf(stderr, "liburing_echo: listening on %s:%d\n", opts.host.c_str(), opts.port);
    srv.run();
    return 0;
}
