// The Prometheus text the daemons serve, and the escaping of the status page.
#include <gtest/gtest.h>

#include "html.hh"
#include "metrics.hh"

using namespace peerdex;

TEST(Histogram, BucketsAreCumulativeAndBoundsInclusive)
{
    Histogram h;
    h.observe_ns(10'000);     // exactly 10 µs: in the first bucket (le is "<=")
    h.observe_ns(10'001);     // just over: the next
    h.observe_ns(3'000'000);  // 3 ms: le 0.005
    h.observe_ns(60'000'000'000ull);  // a minute: only +Inf
    EXPECT_EQ(h.count(), 4u);
    EXPECT_EQ(h.cumulative(0), 1u);
    EXPECT_EQ(h.cumulative(1), 2u);
    EXPECT_EQ(h.cumulative(7), 2u);  // le 0.0025
    EXPECT_EQ(h.cumulative(8), 3u);  // le 0.005
    EXPECT_EQ(h.cumulative(Histogram::kBuckets - 1), 3u);
    EXPECT_DOUBLE_EQ(h.sum_seconds(), 0.00001 + 0.000010001 + 0.003 + 60);
}

TEST(MetricsText, FamiliesSamplesAndHistogramLines)
{
    MetricsText m;
    m.counter("peerdex_x_total", "Things\\done\nwell", 3);
    m.family("peerdex_y_seconds", MetricsText::Type::histogram, "Time");
    Histogram h;
    h.observe_ns(20'000);
    m.histogram("peerdex_y_seconds", h, {{"operation", "REGISTER"}});
    const std::string t = m.text();
    EXPECT_EQ(t.substr(0, t.find("peerdex_y")),
              "# HELP peerdex_x_total Things\\\\done\\nwell\n# TYPE peerdex_x_total counter\npeerdex_x_total 3\n"
              "# HELP ");
    EXPECT_NE(t.find("# TYPE peerdex_y_seconds histogram\n"), std::string::npos);
    EXPECT_NE(t.find("peerdex_y_seconds_bucket{operation=\"REGISTER\",le=\"1e-05\"} 0\n"), std::string::npos);
    EXPECT_NE(t.find("peerdex_y_seconds_bucket{operation=\"REGISTER\",le=\"2.5e-05\"} 1\n"), std::string::npos);
    EXPECT_NE(t.find("peerdex_y_seconds_bucket{operation=\"REGISTER\",le=\"+Inf\"} 1\n"), std::string::npos);
    EXPECT_NE(t.find("peerdex_y_seconds_sum{operation=\"REGISTER\"} 2e-05\n"), std::string::npos);
    EXPECT_NE(t.find("peerdex_y_seconds_count{operation=\"REGISTER\"} 1\n"), std::string::npos);
}

TEST(MetricsText, LabelValuesFromTheNetworkAreEscaped)
{
    MetricsText m;
    m.sample("peerdex_z", std::uint64_t{1}, {{"user", "a\"b\\c\nd"}});
    EXPECT_EQ(m.text(), "peerdex_z{user=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Html, EscapesEverythingThatCouldOpenMarkup)
{
    EXPECT_EQ(html_escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
    EXPECT_EQ(html_escape("a&b \"q\" 'r'"), "a&amp;b &quot;q&quot; &#39;r&#39;");
    EXPECT_EQ(html_escape("plain/path.txt"), "plain/path.txt");
}

TEST(Html, UrlEncodesAllButUnreserved)
{
    EXPECT_EQ(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    EXPECT_EQ(url_encode("AZaz09-_.~"), "AZaz09-_.~");
}
