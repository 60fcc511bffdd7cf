#include <tram/ring.hpp>

#include <catch2/catch.hpp>

using namespace tram;

TEST_CASE("a default ring submits a nop and reaps its completion") {
    ring r;
    io_uring_sqe* sqe = r.get_sqe();
    REQUIRE(sqe != nullptr);
    prep_nop(*sqe);
    set_user_data(*sqe, 42);
    REQUIRE(r.submit_and_wait(1) == 1);
    int seen = 0;
    for (const completion& c : r.completions()) {
        CHECK(c.user_data == 42);
        CHECK(c.result == 0);
        ++seen;
    }
    CHECK(seen == 1);
    CHECK(r.cq().ready() == 0);
}
