// Replies read by the client (peerdex-protocol(7), CONSOLE LINES: a code as a byte or as
// decimal digits, then a list or fixed fields): decoded whole and in pieces they give the same
// code, count, fields and verdict, within the decoder's caps, whatever the shape expected.
#include <string>
#include <vector>

#include "pieces.hh"
#include "reply.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Seen {
    ReplyDecoder::Status status;
    int code;
    std::size_t count;
    std::vector<std::string> fields;
    std::string error;
    bool operator==(const Seen& o) const
    {
        return status == o.status && code == o.code && count == o.count && fields == o.fields && error == o.error;
    }
};

void expect(ReplyDecoder& d, std::uint8_t seed)
{
    switch (seed % 6) {
    case 0: d.expect_code_only(); break;
    case 1: d.expect_list(1); break;  // LIST_CONTENT
    case 2: d.expect_list(3); break;  // LIST_USERS
    case 3: d.expect_list(4); break;  // SEARCH, SOURCES
    case 4: d.expect_fields(2); break;  // GET_USER_INFO
    default: d.expect_fields(1); break;  // GET_FILE, HELLO
    }
}

Seen decode(std::string_view bytes, std::uint8_t seed, fuzz::Pieces* pieces)
{
    ReplyDecoder d;
    expect(d, seed);
    ReplyDecoder::Status st = ReplyDecoder::Status::need_more;
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        st = d.feed(p, end);
        return st == ReplyDecoder::Status::need_more;
    });
    if (st == ReplyDecoder::Status::need_more)
        st = d.eof();  // the peer closed
    return Seen{st, d.code(), d.count(), d.fields(), d.error()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    fuzz::Pieces pieces(in.seed);
    const Seen whole = decode(in.bytes, in.seed, nullptr);
    check(whole == decode(in.bytes, in.seed, &pieces), "a reply decoded in pieces differs from it decoded whole");
    check(whole.count <= ReplyDecoder::kMaxListEntries, "a count over the cap was accepted");
    for (const std::string& f : whole.fields)
        check(f.size() <= kMaxFieldBytes, "a field over the cap was kept");
    return 0;
}
