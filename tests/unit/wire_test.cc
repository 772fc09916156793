#include "wire.hh"

#include <gtest/gtest.h>

#include <vector>

namespace peerdex {
namespace {

// Feeds `input` split at `cut` and returns the fields read, "<too long>" for a refusal.
std::vector<std::string> read_fields(std::string_view input, std::size_t cut, std::size_t cap)
{
    FieldReader reader(cap);
    std::vector<std::string> fields;
    for (auto part : {input.substr(0, cut), input.substr(cut)}) {
        const char* p = part.data();
        const char* end = p + part.size();
        while (p < end) {
            auto st = reader.next(p, end);
            if (st == FieldReader::Status::field) {
                fields.emplace_back(reader.field());
            } else if (st == FieldReader::Status::too_long) {
                fields.emplace_back("<too long>");
                return fields;
            }
        }
    }
    return fields;
}

TEST(FieldReader, SplitAtEveryByteBoundary)
{
    const std::string input("PUBLISH\0alice\0/tmp/a b\0\0", 24);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        auto fields = read_fields(input, cut, 255);
        ASSERT_EQ(fields.size(), 4u) << "cut at " << cut;
        EXPECT_EQ(fields[0], "PUBLISH");
        EXPECT_EQ(fields[1], "alice");
        EXPECT_EQ(fields[2], "/tmp/a b");
        EXPECT_EQ(fields[3], "");
    }
}

TEST(FieldReader, CapIsExactAndEnforcedBeforeTheNul)
{
    EXPECT_EQ(read_fields(std::string(255, 'x') + '\0', 0, 255), std::vector<std::string>{std::string(255, 'x')});
    EXPECT_EQ(read_fields(std::string(256, 'x') + '\0', 0, 255), std::vector<std::string>{"<too long>"});
    // No NUL at all: refused once the cap is passed, not after buffering everything.
    EXPECT_EQ(read_fields(std::string(100000, 'x'), 50000, 255), std::vector<std::string>{"<too long>"});
}

TEST(FieldReader, PartialTracksUnterminatedBytes)
{
    FieldReader reader(16);
    const std::string in("ab", 2);
    const char* p = in.data();
    EXPECT_FALSE(reader.partial());
    EXPECT_EQ(reader.next(p, in.data() + 2), FieldReader::Status::need_more);
    EXPECT_TRUE(reader.partial());
}

TEST(Encoder, FieldsNumbersAndCodes)
{
    std::string out;
    Encoder enc(out);
    enc.code(0);
    enc.number(0);
    enc.number(65535);
    enc.field("x y");
    EXPECT_EQ(out, std::string("\0" "0\0" "65535\0" "x y\0", 13));
}

TEST(Timestamp, ShapeOnly)
{
    EXPECT_TRUE(is_timestamp("22/11/2026 22:38:16"));
    EXPECT_TRUE(is_timestamp("99/99/9999 99:99:99"));  // shape, not calendar
    EXPECT_FALSE(is_timestamp("22/11/2026 22:38:1"));
    EXPECT_FALSE(is_timestamp("22/11/2026 22:38:160"));
    EXPECT_FALSE(is_timestamp("22-11-2026 22:38:16"));
    EXPECT_FALSE(is_timestamp("22/11/2026T22:38:16"));
    EXPECT_FALSE(is_timestamp("a2/11/2026 22:38:16"));
    EXPECT_FALSE(is_timestamp(""));
}

TEST(Port, DecimalInRange)
{
    EXPECT_EQ(parse_port("1"), 1);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_EQ(parse_port("08080"), 8080);
    for (const char* bad : {"0", "65536", "99999", "", "+1", "-1", " 1", "1 ", "0x10", "12a", "123456"})
        EXPECT_FALSE(parse_port(bad).has_value()) << bad;
}

TEST(Decimal, OverflowIsRefused)
{
    EXPECT_EQ(parse_decimal("18446744073709551615", UINT64_MAX), UINT64_MAX);
    EXPECT_FALSE(parse_decimal("18446744073709551616", UINT64_MAX).has_value());
    EXPECT_FALSE(parse_decimal("11", 10).has_value());
    EXPECT_EQ(parse_decimal("10", 10), 10u);
}

TEST(ControlBytes, BelowSpaceAndDel)
{
    EXPECT_FALSE(has_control_bytes("plain text ~"));
    EXPECT_TRUE(has_control_bytes("tab\there"));
    EXPECT_TRUE(has_control_bytes("del\x7f"));
    EXPECT_TRUE(has_control_bytes(std::string_view("\x01", 1)));
    EXPECT_FALSE(has_control_bytes("caf\xc3\xa9"));  // UTF-8 is fine
}

}  // namespace
}  // namespace peerdex
