// Tracker requests (peerdex-protocol(7), TRACKER REQUESTS, SESSIONS): the parser fed a stream
// whole and in arbitrary pieces gives the same requests and the same verdict, HELLO switching
// the dialect as a session does; every field of an accepted request is within its cap.
#include <string>
#include <vector>

#include "pieces.hh"
#include "request.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Seen {
    RequestParser::Result result;
    Op op;
    bool has_timestamp;
    std::string timestamp;
    std::vector<std::string> fields;
    ContentMeta meta;
    bool operator==(const Seen& o) const
    {
        return result == o.result && op == o.op && has_timestamp == o.has_timestamp && timestamp == o.timestamp &&
               fields == o.fields && meta == o.meta;
    }
};

std::vector<Seen> parse(std::string_view bytes, Dialect first, fuzz::Pieces* pieces)
{
    std::vector<Seen> out;
    RequestParser parser;
    parser.set_dialect(first);
    bool dead = false;
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        while (p < end && !dead) {
            const RequestParser::Result r = parser.feed(p, end);
            if (r == RequestParser::Result::need_more)
                break;
            Seen s{r, parser.op(), false, {}, {}, {}};
            if (r == RequestParser::Result::request) {
                const Request& req = parser.request();
                s.has_timestamp = req.has_timestamp;
                s.timestamp = req.timestamp;
                const OpSpec& sp = spec(req.op, first);
                for (int i = 0; i < sp.field_count; ++i) {
                    check(req.fields[i].size() <= std::max(field_cap(sp.fields[i]), kMaxQueryReadBytes),
                          "a field over every cap was accepted");
                    s.fields.push_back(req.fields[i]);
                }
                s.meta = req.meta;
                if (req.op == Op::hello)  // as a session does after its HELLO
                    if (const auto d = hello_dialect(req.fields[0])) {
                        first = *d;
                        parser.set_dialect(*d);
                    }
            } else {
                dead = true;  // malformed or unknown: the parser takes nothing more
            }
            out.push_back(std::move(s));
        }
        return !dead;
    });
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    const Dialect dialect = in.seed & 1 ? Dialect::v2 : Dialect::v1;
    fuzz::Pieces pieces(in.seed);
    check(parse(in.bytes, dialect, nullptr) == parse(in.bytes, dialect, &pieces),
          "requests parsed in pieces differ from requests parsed whole");
    return 0;
}
