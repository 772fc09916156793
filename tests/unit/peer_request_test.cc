#include "peer_request.hh"

#include <gtest/gtest.h>

#include <string>

namespace peerdex {
namespace {

using R = PeerRequestParser::Result;

std::string z(std::initializer_list<std::string> fields)
{
    std::string out;
    for (const std::string& f : fields)
        out += f + '\0';
    return out;
}

TEST(PeerRequest, ListFilesIsWholeAtItsOp)
{
    PeerRequestParser p;
    const std::string in = z({"LIST_FILES"});
    const char* at = in.data();
    EXPECT_EQ(p.feed(at, in.data() + in.size()), R::op);
    EXPECT_EQ(p.op(), PeerOp::list_files);
    EXPECT_TRUE(p.fields().empty());
}

TEST(PeerRequest, GetRangeOneByteAtATime)
{
    PeerRequestParser p;
    const std::string in = z({"GET_RANGE", "big.bin", "1048576", "65536"});
    std::vector<R> results;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char* at = in.data() + i;
        const R r = p.feed(at, at + 1);
        if (r != R::need_more)
            results.push_back(r);
    }
    EXPECT_EQ(results, (std::vector<R>{R::op, R::request}));
    EXPECT_EQ(p.op(), PeerOp::get_range);
    EXPECT_EQ(p.fields(), (std::vector<std::string>{"big.bin", "1048576", "65536"}));
}

TEST(PeerRequest, PutFileStopsWhereTheBodyStarts)
{
    PeerRequestParser p;
    const std::string in = z({"PUT_FILE", "new.txt", "5"}) + "hello";
    const char* at = in.data();
    const char* end = in.data() + in.size();
    EXPECT_EQ(p.feed(at, end), R::op);
    EXPECT_EQ(p.feed(at, end), R::request);
    EXPECT_EQ(std::string(at, end), "hello");
}

TEST(PeerRequest, FieldsOverTheirCapsAreRefusedWithTheirCodes)
{
    struct Case {
        std::string in;
        char code;
    } cases[] = {
        {std::string(17, 'G') + '\0', '\x02'},                                 // an OP no peer has
        {z({"GET_FILE"}) + std::string(256, 'n') + '\0', '\x01'},              // a name no file can have
        {z({"PUT_FILE", "f"}) + std::string(21, '9') + '\0', '\x02'},         // a size beyond any disk
        {z({"GET_RANGE", "f", "0"}) + std::string(21, '1') + '\0', '\x02'},  // a length likewise
    };
    for (const Case& c : cases) {
        PeerRequestParser p;
        const char* at = c.in.data();
        const char* end = c.in.data() + c.in.size();
        R r;
        while ((r = p.feed(at, end)) == R::op) {
        }
        EXPECT_EQ(r, R::refused) << c.in.substr(0, 20);
        EXPECT_EQ(p.refusal(), c.code) << c.in.substr(0, 20);
    }
    // The longest name and the longest number are accepted.
    PeerRequestParser p;
    const std::string in = z({"GET_RANGE", std::string(255, 'n'), std::string(20, '1'), "1"});
    const char* at = in.data();
    EXPECT_EQ(p.feed(at, in.data() + in.size()), R::op);
    EXPECT_EQ(p.feed(at, in.data() + in.size()), R::request);
}

TEST(PeerRequest, AnUnknownOpEndsTheHeader)
{
    PeerRequestParser p;
    const std::string in = z({"DELETE_FILE", "x"});
    const char* at = in.data();
    EXPECT_EQ(p.feed(at, in.data() + in.size()), R::op);
    EXPECT_EQ(p.op(), PeerOp::unknown);
    EXPECT_EQ(p.op_name(), "DELETE_FILE");
    EXPECT_EQ(p.feed(at, in.data() + in.size()), R::need_more);  // nothing more is read
}

}  // namespace
}  // namespace peerdex
