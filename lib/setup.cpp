#include <tram/setup.hpp>

#include <array>
#include <bit>
#include <string_view>
#include <utility>

namespace tram {
namespace {

template <typename Flag, std::size_t N>
std::string join(flag_set<Flag> set, const std::array<std::pair<Flag, std::string_view>, N>& names) {
    std::string out;
    auto rest = set.bits();
    for (const auto& [flag, name] : names) {
        if (!set.contains(flag)) continue;
        if (!out.empty()) out += ", ";
        out += name;
        rest &= ~static_cast<decltype(rest)>(flag);
    }
    // Bits tram has no name for are shown as numbers rather than dropped.
    for (; rest != 0; rest &= rest - 1) {
        if (!out.empty()) out += ", ";
        out += "bit" + std::to_string(std::countr_zero(rest));
    }
    return out;
}

constexpr std::array setup_flag_names{
    std::pair{setup_flag::iopoll, std::string_view("iopoll")},
    std::pair{setup_flag::sqpoll, std::string_view("sqpoll")},
    std::pair{setup_flag::sq_aff, std::string_view("sq_aff")},
    std::pair{setup_flag::cqsize, std::string_view("cqsize")},
    std::pair{setup_flag::clamp, std::string_view("clamp")},
    std::pair{setup_flag::attach_wq, std::string_view("attach_wq")},
    std::pair{setup_flag::r_disabled, std::string_view("r_disabled")},
    std::pair{setup_flag::submit_all, std::string_view("submit_all")},
    std::pair{setup_flag::coop_taskrun, std::string_view("coop_taskrun")},
    std::pair{setup_flag::taskrun_flag, std::string_view("taskrun_flag")},
    std::pair{setup_flag::sqe128, std::string_view("sqe128")},
    std::pair{setup_flag::cqe32, std::string_view("cqe32")},
    std::pair{setup_flag::single_issuer, std::string_view("single_issuer")},
    std::pair{setup_flag::defer_taskrun, std::string_view("defer_taskrun")},
    std::pair{setup_flag::no_mmap, std::string_view("no_mmap")},
    std::pair{setup_flag::registered_fd_only, std::string_view("registered_fd_only")},
    std::pair{setup_flag::no_sqarray, std::string_view("no_sqarray")},
    std::pair{setup_flag::hybrid_iopoll, std::string_view("hybrid_iopoll")},
};

constexpr std::array feature_names{
    std::pair{feature::single_mmap, std::string_view("single_mmap")},
    std::pair{feature::nodrop, std::string_view("nodrop")},
    std::pair{feature::submit_stable, std::string_view("submit_stable")},
    std::pair{feature::rw_cur_pos, std::string_view("rw_cur_pos")},
    std::pair{feature::cur_personality, std::string_view("cur_personality")},
    std::pair{feature::fast_poll, std::string_view("fast_poll")},
    std::pair{feature::poll_32bits, std::string_view("poll_32bits")},
    std::pair{feature::sqpoll_nonfixed, std::string_view("sqpoll_nonfixed")},
    std::pair{feature::ext_arg, std::string_view("ext_arg")},
    std::pair{feature::native_workers, std::string_view("native_workers")},
    std::pair{feature::rsrc_tags, std::string_view("rsrc_tags")},
    std::pair{feature::cqe_skip, std::string_view("cqe_skip")},
    std::pair{feature::linked_file, std::string_view("linked_file")},
    std::pair{feature::reg_reg_ring, std::string_view("reg_reg_ring")},
    std::pair{feature::recvsend_bundle, std::string_view("recvsend_bundle")},
    std::pair{feature::min_timeout, std::string_view("min_timeout")},
    std::pair{feature::rw_attr, std::string_view("rw_attr")},
    std::pair{feature::no_iowait, std::string_view("no_iowait")},
};

} // namespace

std::string to_string(setup_flags flags) { return join(flags, setup_flag_names); }
std::string to_string(features feats) { return join(feats, feature_names); }

} // namespace tram
