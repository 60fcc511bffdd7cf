// Tests of accept_stream.hpp when the kernel ends the multishot accept: a descriptor table that
// is full (RLIMIT_NOFILE reached: EMFILE) and a completion queue that is full. Over 127.0.0.1
// loopback only, every wait bounded by a timeout. The ordinary paths (a thousand connections,
// cancel, destruction while armed) are in tcp_test.cpp.
#include <tram/runtime.hpp>

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace tram;
using namespace std::chrono_literals;

namespace {

// The highest descriptor open in this process.
int highest_open_fd() {
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    int highest = -1;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
    }
    ::closedir(dir);
    return highest;
}

// Lowers RLIMIT_NOFILE and fills the descriptor table up to it, leaving exactly `free_slots`
// descriptors to be had; restores both when destroyed. The limit is checked against the
// descriptor's number, not the count of open ones, so filling the holes below it is what
// makes the number of free slots exact.
class descriptor_squeeze {
public:
    explicit descriptor_squeeze(int free_slots) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(null_fd >= 0);
        fillers_.push_back(null_fd);
        rlimit low = saved_;
        low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 1 + 16);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
        for (int fd; (fd = ::fcntl(null_fd, F_DUPFD_CLOEXEC, 0)) >= 0;)
            fillers_.push_back(fd);
        REQUIRE(errno == EMFILE);
        REQUIRE(fillers_.size() > static_cast<std::size_t>(free_slots));
        for (int i = 0; i < free_slots; ++i) {
            ::close(fillers_.back());
            fillers_.pop_back();
        }
    }
    descriptor_squeeze(const descriptor_squeeze&) = delete;
    descriptor_squeeze& operator=(const descriptor_squeeze&) = delete;
    ~descriptor_squeeze() {
        for (const int fd : fillers_)
            ::close(fd);
        ::setrlimit(RLIMIT_NOFILE, &saved_);
    }

private:
    rlimit saved_{};
    std::vector<int> fillers_;
};

std::span<const std::byte> as_bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// Echoes everything received on `s` until end of stream, then closes it through the ring,
// which is when its descriptor becomes free again.
task<> echo_back(tcp_stream s, int& finished) {
    std::vector<std::byte> buf(4096);
    for (;;) {
        const std::size_t n = co_await s.recv(buf);
        if (n == 0) break;
        co_await s.send_all(std::span(buf).first(n));
    }
    co_await s.close();
    ++finished;
}

// What the server saw of the descriptor shortage.
struct shortage_report {
    int accepted = 0;
    int finished = 0;
    int emfile_errors = 0;
    std::string first_error;
};

// A server as the accept stream's documentation suggests writing one: an EMFILE from next()
// means "no descriptor now"; it waits a little (the kernel does not say when one frees) and
// asks again, which arms the accept again. Connections it has go on being served meanwhile.
task<> serve_through_shortage(accept_stream<tcp_stream>& incoming, shortage_report& report) {
    for (;;) {
        try {
            spawn(echo_back(co_await incoming.next(), report.finished));
            ++report.accepted;
            continue;
        } catch (const error& e) {
            if (e.errnum() == ECANCELED) co_return;
            if (e.errnum() != EMFILE) throw;
            if (report.emfile_errors++ == 0) report.first_error = e.what();
        }
        co_await sleep_for(2ms);
    }
}

// One echo of `message` on `client`, waiting at most `limit` for it.
task<> expect_echo(tcp_stream& client, const std::string& message,
                   std::chrono::milliseconds limit) {
    co_await client.send_all(as_bytes(message));
    std::string echoed(message.size(), '\0');
    std::size_t got = 0;
    while (got < message.size()) {
        const std::size_t n =
            co_await client.recv(std::as_writable_bytes(std::span(echoed)).subspan(got))
                .with_timeout(limit);
        REQUIRE(n > 0);
        got += n;
    }
    CHECK(echoed == message);
}

// Whether `client` receives anything within `wait` (nothing: its connection is not served).
task<bool> hears_within(tcp_stream& client, std::chrono::milliseconds wait) {
    std::byte b{};
    try {
        (void)co_await client.recv(std::span(&b, 1)).with_timeout(wait);
        co_return true;
    } catch (const error& e) {
        if (e.errnum() != ETIME) throw;
        co_return false;
    }
}

} // namespace

TEST_CASE("a server out of descriptors serves the connections it has, and the waiting ones "
          "once descriptors free up") {
    constexpr int clients = 6;
    constexpr int free_slots = 2; // so two connections at a time
    driver d;
    shortage_report report;
    std::string listener_name;
    run(d, [](shortage_report& report, std::string& listener_name) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        listener_name = listener.name().to_string();
        // All descriptors the test itself needs are taken before the table is filled; the
        // handshakes complete in the listener's backlog without an accept.
        std::vector<tcp_stream> client;
        for (int i = 0; i < clients; ++i)
            client.push_back(co_await tcp_stream::connect(listener.name()));
        descriptor_squeeze squeeze(free_slots);

        auto incoming = listener.incoming();
        auto drive = [](std::vector<tcp_stream>& client, accept_stream<tcp_stream>& incoming,
                        shortage_report& report) -> task<> {
            for (int i = 0; i < free_slots; ++i)
                co_await expect_echo(client[i], "hello " + std::to_string(i), 2s);
            // The others wait in the backlog, their bytes unread, while the table is full.
            for (int i = free_slots; i < clients; ++i)
                co_await client[i].send_all(as_bytes("waiting " + std::to_string(i)));
            CHECK_FALSE(co_await hears_within(client[free_slots], 50ms));
            CHECK(report.emfile_errors > 0);
            // The connections the server has are still served, and more than once.
            for (int i = 0; i < free_slots; ++i)
                co_await expect_echo(client[i], "again " + std::to_string(i), 2s);
            // Each connection that ends frees a descriptor for the oldest waiting one (the
            // accept queue is FIFO), which then gets the echo of what it sent long ago.
            for (int i = free_slots; i < clients; ++i) {
                co_await client[i - free_slots].shutdown(SHUT_WR);
                const std::string sent = "waiting " + std::to_string(i);
                std::string echoed(sent.size(), '\0');
                std::size_t got = 0;
                while (got < sent.size()) {
                    got += co_await client[i]
                               .recv(std::as_writable_bytes(std::span(echoed)).subspan(got))
                               .with_timeout(2s);
                }
                CHECK(echoed == sent);
            }
            for (int i = clients - free_slots; i < clients; ++i)
                co_await client[i].shutdown(SHUT_WR);
            for (int spins = 0; report.finished < clients && spins < 1000; ++spins)
                co_await sleep_for(1ms);
            incoming.cancel();
        };
        co_await when_all(serve_through_shortage(incoming, report),
                          drive(client, incoming, report));
    }(report, listener_name));
    CHECK(report.accepted == clients);
    CHECK(report.finished == clients);
    CHECK(report.first_error == "accept " + listener_name + ": Too many open files (EMFILE)");
    // Backing off between attempts keeps the retries to a few hundred a second at most.
    CHECK(report.emfile_errors < 2000);
    CHECK(d.in_flight() == 0);
}

TEST_CASE("an accept stream that a full completion queue ends hands over its last connection "
          "and re-arms") {
    // Eight CQEs fit: the kernel accepts the ninth queued connection, cannot post it with
    // IORING_CQE_F_MORE, and ends the multishot accept with it in the final CQE.
    constexpr int clients = 20;
    driver d(driver_options{.entries = 4, .cq_entries = 8});
    int finished = 0;
    std::uint64_t arms = 0;
    run(d, [](int& finished, std::uint64_t& arms) -> task<> {
        tcp_listener listener = tcp_listener::bind(socket_address::loopback_v4());
        std::vector<tcp_stream> client;
        for (int i = 0; i < clients; ++i)
            client.push_back(co_await tcp_stream::connect(listener.name()));
        auto incoming = listener.incoming();
        for (int i = 0; i < clients; ++i)
            spawn(echo_back(co_await incoming.next(), finished));
        arms = incoming.arms();
        for (int i = 0; i < clients; ++i) {
            co_await expect_echo(client[i], "client " + std::to_string(i), 2s);
            co_await client[i].shutdown(SHUT_WR);
        }
        for (int spins = 0; finished < clients && spins < 1000; ++spins)
            co_await sleep_for(1ms);
    }(finished, arms));
    CHECK(finished == clients);
    CHECK(arms >= 2);
}
