#include <tram/error.hpp>
#include <tram/probe.hpp>
#include <tram/ring.hpp>

#include <cstdlib>
#include <memory>

namespace tram {

probe::probe(ring& r) {
    constexpr unsigned max_ops = 256;
    // io_uring_probe ends in a flexible array; allocate it with room for every op number.
    const std::size_t size = sizeof(io_uring_probe) + max_ops * sizeof(io_uring_probe_op);
    std::unique_ptr<io_uring_probe, decltype(&std::free)> p(
        static_cast<io_uring_probe*>(std::calloc(1, size)), &std::free);
    if (!p) throw_error(ENOMEM, "io_uring_register(PROBE)");
    const int res = r.register_raw(IORING_REGISTER_PROBE, p.get(), max_ops);
    if (res < 0) throw_error(-res, "io_uring_register(PROBE)", "the kernel cannot list its ops (before 5.6?)");
    last_op_ = p->last_op;
    for (unsigned i = 0; i < p->ops_len; ++i) {
        if (p->ops[i].flags & IO_URING_OP_SUPPORTED) supported_.set(p->ops[i].op);
    }
}

probe probe::of_kernel() {
    ring_options options;
    options.entries = 2;
    options.register_ring_fd = false;
    ring r(options);
    return probe(r);
}

std::vector<opcode> probe::supported() const {
    std::vector<opcode> ops;
    for (unsigned i = 0; i < opcode_count; ++i) {
        if (supported_[i]) ops.push_back(static_cast<opcode>(i));
    }
    return ops;
}

} // namespace tram
