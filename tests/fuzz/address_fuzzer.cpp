// libFuzzer target: tram::socket_address::parse (runtime/src/address.cpp, compiled in by
// scripts/fuzz). Bad input must be a tram::error with EINVAL, never a crash; a parsed address
// must format and parse back to the same address.
#include <tram/address.hpp>
#include <tram/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    tram::socket_address a;
    try {
        a = tram::socket_address::parse(text);
    } catch (const tram::error& e) {
        if (e.errnum() != EINVAL) std::abort();
        return 0;
    }
    const std::string shown = a.to_string();
    // to_string shows the NULs of an abstract name as '@' (by design): no round trip then.
    if (a.is_unix() && (shown == "(unnamed)" || text.find('\0') != std::string_view::npos)) {
        return 0;
    }
    // Found by this fuzzer: to_string wrote a relative Unix path without the "unix:" that
    // parse needs to read it back ("unix:a/b" -> "a/b"); fixed, and covered in address_test.
    try {
        const tram::socket_address again = tram::socket_address::parse(shown);
        if (!(again == a)) std::abort();
    } catch (const tram::error&) {
        std::abort(); // what to_string writes, parse must read
    }
    return 0;
}
