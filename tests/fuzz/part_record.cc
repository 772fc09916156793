// The record a resumable download keeps beside its partial file (read when a download
// resumes): any text is taken as a record of this file or refused; an accepted one marks only
// leaves the file has. The choice byte picks the file's size.
#include <string>
#include <vector>

#include "content_id.hh"
#include "partial_file.hh"
#include "pieces.hh"

using namespace peerdex;
using peerdex::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    static const std::uint64_t kSizes[] = {0, 1, 65535, 65536, 65537, 1 << 20, (1 << 20) + 3, 5ull << 30};
    const std::uint64_t file_size = kSizes[in.seed % 8];
    const std::string id = "sha256:" + std::string(64, 'a');
    std::vector<std::uint8_t> have(leaf_count(file_size), 0);
    const std::string text(in.bytes);
    if (!parse_part_record(text, id, file_size, have))
        return 0;
    check(have.size() == leaf_count(file_size), "the leaf table changed size");
    for (std::uint8_t h : have)
        check(h <= 1, "a leaf marked with something else than 1");
    return 0;
}
