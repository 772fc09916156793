// Names and fields a peer or a tracker judges (peerdex-protocol(7), PEER TRANSFERS, TRACKER
// REQUESTS): the file-name rule, sizes, content ids and every field kind take any bytes; a
// name the rule accepts can never leave the shared directory; a content id that parses is
// written back as the same text, in lowercase.
#include <string>

#include "content_id.hh"
#include "files.hh"
#include "pieces.hh"
#include "protocol.hh"

using namespace peerdex;
using peerdex::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    const std::string_view s = in.bytes;
    if (valid_file_name(s)) {
        check(s.find('/') == std::string_view::npos && s != "." && s != ".." && !s.empty() && s.size() <= 255,
              "a name that leaves the directory was accepted");
        check(s.find('\0') == std::string_view::npos, "a name with a NUL was accepted");
        check(base_name(s) == s, "a valid name is not its own base name");
    }
    base_name(s);
    parse_size(s);
    Digest id;
    if (parse_content_id(s, id)) {  // hex digits in either case; written in lowercase
        std::string lower(s);
        for (char& c : lower)
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        check(content_id_text(id) == lower, "a content id does not round-trip");
    }
    for (int k = 0; k <= static_cast<int>(FieldKind::wanted_id); ++k) {
        const auto kind = static_cast<FieldKind>(k);
        const bool ok = field_valid(kind, s);
        check(!ok || s.size() <= field_cap(kind), "a field over its cap is valid");
        if (!ok)
            check(!field_problem(kind, s).empty(), "a refused field has no explanation");
    }
    // PUBLISH's size and id (peerdex/2): the first byte cuts the input in two.
    const std::size_t cut = in.seed < s.size() ? in.seed : s.size();
    ContentMeta meta;
    if (parse_content_meta(s.substr(0, cut), s.substr(cut), meta))
        check(!meta.has_id || meta.has_size, "an id without a size was accepted");
    return 0;
}
