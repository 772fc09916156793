#include "datetime.hh"

#include <gtest/gtest.h>

#include <cstdlib>

namespace peerdex {
namespace {

class InZone {
public:
    explicit InZone(const char* tz)
    {
        if (const char* old = std::getenv("TZ"))
            saved_ = old;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~InZone()
    {
        if (saved_.empty())
            unsetenv("TZ");
        else
            setenv("TZ", saved_.c_str(), 1);
        tzset();
    }

private:
    std::string saved_;
};

constexpr std::time_t kInstant = 1795387096;  // 2026-11-22 22:38:16 UTC

TEST(Datetime, CourseFormatInTheLocalZone)
{
    {
        InZone z("UTC");
        EXPECT_EQ(course_timestamp(kInstant), "22/11/2026 22:38:16");
    }
    {
        InZone z("Asia/Tokyo");  // +09:00: the next day
        EXPECT_EQ(course_timestamp(kInstant), "23/11/2026 07:38:16");
    }
}

TEST(Datetime, Iso8601WithOffset)
{
    {
        InZone z("UTC");
        EXPECT_EQ(iso8601_timestamp(kInstant), "2026-11-22T22:38:16+00:00");
    }
    {
        InZone z("America/St_Johns");  // -03:30 in November
        EXPECT_EQ(iso8601_timestamp(kInstant), "2026-11-22T19:08:16-03:30");
    }
}

// Past 2038: a 32-bit time_t ends on 19/01/2038 03:14:07 UTC (the armhf build takes glibc's
// 64-bit one, meson.build). 2^31 itself, and a date well beyond, in both formats.
TEST(Datetime, PastTheYear2038)
{
    InZone z("UTC");
    EXPECT_EQ(course_timestamp(static_cast<std::time_t>(2147483648LL)), "19/01/2038 03:14:08");
    EXPECT_EQ(course_timestamp(static_cast<std::time_t>(4102444800LL)), "01/01/2100 00:00:00");
    EXPECT_EQ(iso8601_timestamp(static_cast<std::time_t>(4102444800LL)), "2100-01-01T00:00:00+00:00");
}

TEST(Datetime, AcceptNegotiation)
{
    EXPECT_TRUE(prefers_json("application/json"));
    EXPECT_TRUE(prefers_json("application/json, text/plain;q=0.5"));
    EXPECT_TRUE(prefers_json("text/plain;q=0.1, application/*"));
    EXPECT_TRUE(prefers_json("APPLICATION/JSON"));
    EXPECT_FALSE(prefers_json(""));
    EXPECT_FALSE(prefers_json("*/*"));
    EXPECT_FALSE(prefers_json("text/plain, application/json"));  // equal: plain text, the canonical answer
    EXPECT_FALSE(prefers_json("application/json;q=0, */*"));
    EXPECT_FALSE(prefers_json("text/html, application/xml"));
    EXPECT_FALSE(prefers_json(",,;;/"));
}

}  // namespace
}  // namespace peerdex
