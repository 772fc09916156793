// The log server's journal (read at every start): any line parses as a record or is refused;
// a record that parses is written back as a line that parses to the same record.
#include <string>

#include "pieces.hh"
#include "store.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

bool same(const JournalRecord& a, const JournalRecord& b)
{
    return a.kind == b.kind && a.before == b.before && a.after == b.after && a.seqs == b.seqs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    // Each line of the input, as the journal's reader takes them.
    std::string_view rest = in.bytes;
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        JournalRecord r;
        if (!parse_journal_record(line, r))
            continue;
        check(r.before <= r.after && (r.kind == 'J' || r.kind == 'S'), "an impossible record was accepted");
        std::string again;
        append_journal_record(again, r);
        check(!again.empty() && again.back() == '\n', "a record is not written as one line");
        again.pop_back();
        JournalRecord back;
        check(parse_journal_record(again, back) && same(r, back), "a record does not read back as written");
    }
    return 0;
}
