// The request header of a peer transfer (peerdex-protocol(7), PEER TRANSFERS, FILE RANGES):
// fed whole and in pieces it gives the same OP, fields, verdict and body offset; every field
// is within its cap; an unknown OP and LIST_FILES end the header at once.
#include <string>
#include <vector>

#include "peer_request.hh"
#include "pieces.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Seen {
    std::vector<int> results;
    PeerOp op = PeerOp::unknown;
    std::vector<std::string> fields;
    char refusal = 0;
    std::size_t body_at = 0;  // where the bytes after the header start
    bool operator==(const Seen& o) const
    {
        return results == o.results && op == o.op && fields == o.fields && refusal == o.refusal &&
               body_at == o.body_at;
    }
};

Seen parse(std::string_view bytes, fuzz::Pieces* pieces)
{
    Seen s;
    PeerRequestParser parser;
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        for (;;) {
            const auto r = parser.feed(p, end);
            if (r == PeerRequestParser::Result::need_more)
                return true;
            s.results.push_back(static_cast<int>(r));
            const bool whole_at_op = r == PeerRequestParser::Result::op &&
                                     (parser.op() == PeerOp::list_files || parser.op() == PeerOp::unknown);
            if (r != PeerRequestParser::Result::op || whole_at_op) {
                s.body_at = static_cast<std::size_t>(p - bytes.data());
                return false;
            }
        }
    });
    s.op = parser.op();
    s.fields = parser.fields();
    s.refusal = parser.refusal();
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    fuzz::Pieces pieces(in.seed);
    const Seen whole = parse(in.bytes, nullptr);
    const Seen split = parse(in.bytes, &pieces);
    // A refusal is decided by the bytes of one field: where the reader stopped may differ
    // (it skips the rest of a piece it refuses), the verdict may not.
    check(whole.results == split.results && whole.op == split.op && whole.fields == split.fields &&
              whole.refusal == split.refusal,
          "a header parsed in pieces differs from it parsed whole");
    if (!whole.results.empty() && whole.results.back() == static_cast<int>(PeerRequestParser::Result::request))
        check(whole.body_at == split.body_at, "the body starts elsewhere when the header came in pieces");
    for (std::size_t i = 0; i < whole.fields.size(); ++i)
        check(whole.fields[i].size() <= (i == 0 ? kMaxFieldBytes : PeerRequestParser::kMaxSizeDigits),
              "a field over its cap was accepted");
    return 0;
}
