// cat: concatenates files to standard output through the ring.
//
// Each file is read in large chunks with two buffers: while one chunk is being written, the
// next one is already being read, so that the disk (or page cache) and the output overlap.
// Like coreutils cat, a file that cannot be opened or read is reported on stderr and skipped,
// and the exit status is then 1.
#include <tram/error.hpp>
#include <tram/runtime.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Large enough that a read or write costs little per byte, small enough to stay in cache.
constexpr std::size_t chunk_size = 128 * 1024;

constexpr std::string_view usage = "Usage: cat [--help] [FILE]...\n"
                                   "Concatenates FILEs to standard output through io_uring.\n"
                                   "With no FILE, or when FILE is -, reads standard input.\n";

// A failure to write the output ends the whole program, unlike a failure to read one input.
struct output_failed {
    tram::error cause;
};

// tram::error's what() is its message followed by ": " and strerror (std::system_error):
// the message alone already names the cause.
std::string message_of(const tram::error& e) {
    std::string text = e.what();
    const std::string suffix = ": " + e.code().message();
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
        text.resize(text.size() - suffix.size());
    }
    return text;
}

void report(const tram::error& e) { std::fprintf(stderr, "cat: %s\n", message_of(e).c_str()); }

// A descriptor the process already had (stdin, stdout): used, never closed.
class borrowed_file {
public:
    borrowed_file(int fd, std::string name)
        : file_(tram::file::adopt(fd, std::move(name))) {}
    borrowed_file(const borrowed_file&) = delete;
    borrowed_file& operator=(const borrowed_file&) = delete;
    ~borrowed_file() { (void)file_.release(); }
    [[nodiscard]] const tram::file& get() const noexcept { return file_; }

private:
    tram::file file_;
};

tram::task<> write_chunk(const tram::file& out, std::span<const std::byte> chunk) {
    try {
        co_await out.write_all(chunk);
    } catch (const tram::error& e) {
        throw output_failed{e};
    }
}

tram::task<std::size_t> read_chunk(const tram::file& in, std::span<std::byte> chunk) {
    co_return co_await in.read(chunk);
}

/// Copies `in` to `out` until end of file, reading the next chunk while writing the last.
tram::task<> copy(const tram::file& in, const tram::file& out, std::span<std::byte> (&buffers)[2]) {
    unsigned current = 0;
    std::size_t n = co_await in.read(buffers[current]);
    while (n > 0) {
        const auto written = buffers[current].first(n);
        current ^= 1U;
        // The write comes first: when both fail, when_all rethrows its error, which ends the
        // program, rather than the read's.
        auto [ignored, next] =
            co_await tram::when_all(write_chunk(out, written), read_chunk(in, buffers[current]));
        n = next;
    }
}

/// Concatenates `paths` to stdout; gives false when some file could not be opened or read.
tram::task<bool> concatenate(std::vector<std::string> paths) {
    // Aligned like pages, which suits the kernel's copy and any O_DIRECT output.
    constexpr std::align_val_t alignment{4096};
    const std::unique_ptr<std::byte, void (*)(std::byte*)> memory(
        static_cast<std::byte*>(::operator new(2 * chunk_size, alignment)),
        [](std::byte* p) { ::operator delete(p, alignment); });
    std::span<std::byte> buffers[2] = {{memory.get(), chunk_size},
                                       {memory.get() + chunk_size, chunk_size}};

    const borrowed_file out(STDOUT_FILENO, "standard output");
    bool all_read = true;
    for (const std::string& path : paths) {
        try {
            if (path == "-") {
                const borrowed_file in(STDIN_FILENO, "standard input");
                co_await copy(in.get(), out.get(), buffers);
            } else {
                tram::file in = co_await tram::file::open(path, O_RDONLY);
                co_await copy(in, out.get(), buffers);
            }
        } catch (const tram::error& e) {
            report(e);
            all_read = false;
        }
    }
    co_return all_read;
}

} // namespace

int main(int argc, char* argv[]) {
    std::vector<std::string> paths;
    bool options_end = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!options_end && arg == "--help") {
            std::fputs(usage.data(), stdout);
            return 0;
        }
        if (!options_end && arg == "--") {
            options_end = true;
        } else if (!options_end && arg.size() > 1 && arg.front() == '-') {
            std::fprintf(stderr, "cat: unknown option %s\n%s", argv[i], usage.data());
            return 2;
        } else {
            paths.emplace_back(arg);
        }
    }
    if (paths.empty()) paths.emplace_back("-");

    try {
        tram::driver driver;
        return tram::run(driver, concatenate(std::move(paths))) ? 0 : 1;
    } catch (const output_failed& failure) {
        // A closed pipe ends cat as it ends any writer: by SIGPIPE, which the kernel sends
        // only when the write runs on this thread, not when it ran on an io_uring worker.
        if (failure.cause.errnum() == EPIPE) {
            std::signal(SIGPIPE, SIG_DFL);
            std::raise(SIGPIPE);
        }
        std::fprintf(stderr, "cat: %s\n", message_of(failure.cause).c_str());
    } catch (const tram::error& e) {
        report(e); // no ring (io_uring disabled, RLIMIT_MEMLOCK...)
    }
    return 1;
}
