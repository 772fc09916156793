// The wire codec (peerdex-protocol(7), TRACKER REQUESTS): fields read with a cap, whole or in
// pieces, give the same fields; the encoder's output reads back as what was encoded; decimal
// numbers round-trip; the field predicates take any bytes.
#include <string>
#include <vector>

#include "pieces.hh"
#include "wire.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Outcome {
    std::vector<std::string> fields;
    FieldReader::Status last = FieldReader::Status::need_more;
    bool partial = false;
    bool operator==(const Outcome& o) const { return fields == o.fields && last == o.last && partial == o.partial; }
};

Outcome read_fields(std::string_view bytes, std::size_t cap, fuzz::Pieces* pieces)
{
    Outcome out;
    FieldReader reader(cap);
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        while (p < end) {
            out.last = reader.next(p, end);
            if (out.last == FieldReader::Status::field)
                out.fields.emplace_back(reader.field());
            if (out.last == FieldReader::Status::too_long)
                return false;
        }
        return true;
    });
    if (out.last == FieldReader::Status::field)
        out.last = FieldReader::Status::need_more;  // ended between fields
    out.partial = out.last != FieldReader::Status::too_long && reader.partial();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    const std::size_t cap = in.seed & 1 ? kMaxFieldBytes : 1 + in.seed % 32;
    fuzz::Pieces pieces(in.seed);
    const Outcome whole = read_fields(in.bytes, cap, nullptr);
    const Outcome split = read_fields(in.bytes, cap, &pieces);
    check(whole == split, "fields read in pieces differ from fields read whole");
    for (const std::string& f : whole.fields) {
        check(f.size() <= cap, "a field longer than its cap was accepted");
        is_timestamp(f);
        has_control_bytes(f);
        if (const auto port = parse_port(f))
            check(*port >= 1, "port 0 accepted");
        if (const auto n = parse_decimal(f, UINT64_MAX)) {
            char buf[20];
            const std::size_t len = format_decimal(*n, buf);
            check(parse_decimal(std::string_view(buf, len), UINT64_MAX) == n, "decimal does not round-trip");
        }
    }
    // What the encoder writes, the reader reads back.
    std::string encoded;
    Encoder enc(encoded);
    for (const std::string& f : whole.fields)
        enc.field(f);
    const Outcome again = read_fields(encoded, cap, &pieces);
    check(again.fields == whole.fields && !again.partial, "encoded fields do not read back");
    return 0;
}
