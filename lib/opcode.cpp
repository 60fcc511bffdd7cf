#include <tram/opcode.hpp>
#include <tram/probe.hpp>

#include <array>
#include <string>

namespace tram {
namespace {

struct opcode_info {
    std::string_view name;
    std::string_view since; // first Linux version with the op
};

constexpr std::array<opcode_info, opcode_count> info_table{{
    {"nop", "5.1"},
    {"readv", "5.1"},
    {"writev", "5.1"},
    {"fsync", "5.1"},
    {"read_fixed", "5.1"},
    {"write_fixed", "5.1"},
    {"poll_add", "5.1"},
    {"poll_remove", "5.1"},
    {"sync_file_range", "5.2"},
    {"sendmsg", "5.3"},
    {"recvmsg", "5.3"},
    {"timeout", "5.4"},
    {"timeout_remove", "5.5"},
    {"accept", "5.5"},
    {"async_cancel", "5.5"},
    {"link_timeout", "5.5"},
    {"connect", "5.5"},
    {"fallocate", "5.6"},
    {"openat", "5.6"},
    {"close", "5.6"},
    {"files_update", "5.6"},
    {"statx", "5.6"},
    {"read", "5.6"},
    {"write", "5.6"},
    {"fadvise", "5.6"},
    {"madvise", "5.6"},
    {"send", "5.6"},
    {"recv", "5.6"},
    {"openat2", "5.6"},
    {"epoll_ctl", "5.6"},
    {"splice", "5.7"},
    {"provide_buffers", "5.7"},
    {"remove_buffers", "5.7"},
    {"tee", "5.8"},
    {"shutdown", "5.11"},
    {"renameat", "5.11"},
    {"unlinkat", "5.11"},
    {"mkdirat", "5.15"},
    {"symlinkat", "5.15"},
    {"linkat", "5.15"},
    {"msg_ring", "5.18"},
    {"fsetxattr", "5.19"},
    {"setxattr", "5.19"},
    {"fgetxattr", "5.19"},
    {"getxattr", "5.19"},
    {"socket", "5.19"},
    {"uring_cmd", "5.19"},
    {"send_zc", "6.0"},
    {"sendmsg_zc", "6.1"},
    {"read_multishot", "6.7"},
    {"waitid", "6.7"},
    {"futex_wait", "6.7"},
    {"futex_wake", "6.7"},
    {"futex_waitv", "6.7"},
    {"fixed_fd_install", "6.8"},
    {"ftruncate", "6.9"},
    {"bind", "6.11"},
    {"listen", "6.11"},
    {"recv_zc", "6.15"},
    {"epoll_wait", "6.15"},
    {"readv_fixed", "6.15"},
    {"writev_fixed", "6.15"},
    {"pipe", "6.16"},
}};

const opcode_info* info(opcode op) noexcept {
    const auto i = static_cast<unsigned>(op);
    return i < info_table.size() ? &info_table[i] : nullptr;
}

} // namespace

std::string_view to_string(opcode op) noexcept {
    const auto* i = info(op);
    return i ? i->name : "unknown";
}

std::string_view first_kernel_with(opcode op) noexcept {
    const auto* i = info(op);
    return i ? i->since : "?";
}

std::string unsupported_op_message(opcode op) {
    std::string name(to_string(op));
    for (char& c : name) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return "IORING_OP_" + name + " is not supported by this kernel (it needs Linux " +
           std::string(first_kernel_with(op)) + " or later)";
}

} // namespace tram
