// The standalone server's pure pieces: the FILE SERVER name rule, sizes, the ls table, the
// progress line and the statistics block.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "files.hh"

using namespace peerdex;

TEST(FileName, AcceptsPlainNames)
{
    EXPECT_TRUE(valid_file_name("a"));
    EXPECT_TRUE(valid_file_name("report 2026.pdf"));
    EXPECT_TRUE(valid_file_name(".hidden"));
    EXPECT_TRUE(valid_file_name("..."));
    EXPECT_TRUE(valid_file_name("\xc3\xa9t\xc3\xa9.txt"));  // UTF-8 is bytes like any other
    EXPECT_TRUE(valid_file_name(std::string(255, 'x')));
}

TEST(FileName, RefusesEverythingThatIsNotOneComponent)
{
    EXPECT_FALSE(valid_file_name(""));
    EXPECT_FALSE(valid_file_name("."));
    EXPECT_FALSE(valid_file_name(".."));
    EXPECT_FALSE(valid_file_name("../x"));
    EXPECT_FALSE(valid_file_name("a/b"));
    EXPECT_FALSE(valid_file_name("/etc/passwd"));
    EXPECT_FALSE(valid_file_name("dir/"));
    EXPECT_FALSE(valid_file_name(std::string(256, 'x')));
    EXPECT_FALSE(valid_file_name(std::string("a\0b", 3)));
    for (int c = 1; c < 0x20; ++c)
        EXPECT_FALSE(valid_file_name("a" + std::string(1, static_cast<char>(c)))) << c;
    EXPECT_FALSE(valid_file_name("a\x7f"));
    EXPECT_FALSE(valid_file_name(std::string(kUploadTempPrefix) + "abc"));
}

TEST(Size, ParsesUnits)
{
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("1536"), 1536u);
    EXPECT_EQ(parse_size("1536B"), 1536u);
    EXPECT_EQ(parse_size("10K"), 10240u);
    EXPECT_EQ(parse_size("10kib"), 10240u);
    EXPECT_EQ(parse_size("2M"), 2u << 20);
    EXPECT_EQ(parse_size("1G"), 1u << 30);
    EXPECT_EQ(parse_size("3GiB"), 3ull << 30);
    EXPECT_EQ(parse_size("1T"), 1ull << 40);
    EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("M"));
    EXPECT_FALSE(parse_size("-1"));
    EXPECT_FALSE(parse_size("1.5G"));
    EXPECT_FALSE(parse_size("10X"));
    EXPECT_FALSE(parse_size("18446744073709551616"));
    EXPECT_FALSE(parse_size("17000000T"));
}

TEST(Size, HumanUnits)
{
    EXPECT_EQ(human_size(0), "0 B");
    EXPECT_EQ(human_size(1023), "1023 B");
    EXPECT_EQ(human_size(1536), "1.5 KiB");
    EXPECT_EQ(human_size(3.0 * (1 << 30)), "3.0 GiB");
}

TEST(Listing, AlignsSizesAndShowsLocalTime)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const std::vector<FileEntry> files{{"a.txt", 5, 0}, {"big.iso", 3ull << 30, 1795000000}, {"b\nad", 1536, 60}};
    EXPECT_EQ(format_listing(files, false),
              "1970-01-01 00:00      5 B  a.txt\n"
              "2026-11-18 11:06  3.0 GiB  big.iso\n"
              "1970-01-01 00:01  1.5 KiB  b?ad\n");
    EXPECT_EQ(format_listing(files, true),
              "1970-01-01 00:00           5  a.txt\n"
              "2026-11-18 11:06  3221225472  big.iso\n"
              "1970-01-01 00:01        1536  b?ad\n");
    EXPECT_EQ(format_listing({}, false), "");
    // A file dated past 2038 (a 32-bit time_t would wrap to 1901): its date as it is.
    EXPECT_EQ(format_listing({{"later", 1, 4102444800LL}}, true), "2100-01-01 00:00  1  later\n");
}

TEST(Progress, ShowsFractionRateAndEta)
{
    EXPECT_EQ(progress_line("f", 1 << 20, 2 << 20, 1000),
              "f [###############---------------]  50% 1.0 MiB/2.0 MiB 1.0 MiB/s ETA 1s");
    EXPECT_EQ(progress_line("f", 0, 0, 0), "f [##############################] 100% 0 B/0 B");
}

TEST(BaseName, LastComponentTrailingSlashesIgnored)
{
    EXPECT_EQ(base_name("/home/bob/song.ogg"), "song.ogg");
    EXPECT_EQ(base_name("dir/sub/"), "sub");
    EXPECT_EQ(base_name("plain"), "plain");
    EXPECT_EQ(base_name("/"), "");
}

TEST(Progress, RedrawErasesWhatALongerLineLeft)
{
    EXPECT_EQ(progress_redraw("f 10%", false), "\rf 10%\x1b[K");
    EXPECT_EQ(progress_redraw("f 100%", true), "\rf 100%\x1b[K\n");
}

TEST(Stats, EveryCounterIsShown)
{
    PeerStats s;
    s.connections = 7;
    s.open = 1;
    s.get_file = 2;
    s.list_files = 3;
    s.put_file = 4;
    s.other = 5;
    s.refused = 6;
    s.abandoned = 11;
    s.listings = 12;
    s.bytes_sent = 2048;
    s.bytes_received = 10;
    s.files_downloaded = 8;
    s.files_uploaded = 9;
    s.get_range = 13;
    s.get_tree = 14;
    s.ranges_sent = 15;
    s.trees = 16;
    s.upload_slots = 2;
    s.uploads = 1;
    s.upload_queue = 17;
    s.upload_rate = 2 << 20;
    s.rate_waiting = 18;
    EXPECT_EQ(format_stats(s, 61),
              "uptime: 61 s\n"
              "connections: 7 (open 1)\n"
              "requests: GET_FILE 2, LIST_FILES 3, PUT_FILE 4, GET_RANGE 13, GET_TREE 14, other 5\n"
              "refused: 6\n"
              "abandoned: 11\n"
              "listings built: 12\n"
              "trees sent: 16\n"
              "bytes sent: 2048 (2.0 KiB)\n"
              "bytes received: 10 (10 B)\n"
              "files downloaded: 8\n"
              "ranges sent: 15\n"
              "upload slots: 1 in use of 2, 17 waiting\n"
              "upload rate: 2.0 MiB/s, 18 waiting\n"
              "files uploaded: 9\n");
    s.upload_slots = s.upload_rate = 0;
    const std::string unlimited = format_stats(s, 61);
    EXPECT_NE(unlimited.find("upload slots: 1 in use of unlimited, 17 waiting\n"), std::string::npos) << unlimited;
    EXPECT_NE(unlimited.find("upload rate: unlimited, 18 waiting\n"), std::string::npos) << unlimited;
}
