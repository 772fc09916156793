// GET_TREE's reply read by a downloader (peerdex-protocol(7), FILE RANGES): fed whole and in
// pieces it gives the same verdict and the same tree; an accepted tree has the size's count of
// leaves, and its leaves give its id.
#include <string>

#include "pieces.hh"
#include "tree_reply.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

struct Seen {
    TreeReply::Status status = TreeReply::Status::need_more;
    TreeReply::Fault fault = TreeReply::Fault::none;
    int code = -1;
    std::uint64_t size = 0;
    Digest root{};
    std::vector<Digest> leaves;
    bool operator==(const Seen& o) const
    {
        return status == o.status && fault == o.fault && code == o.code && size == o.size && root == o.root &&
               leaves == o.leaves;
    }
};

Seen read(std::string_view bytes, fuzz::Pieces* pieces)
{
    TreeReply r;
    Seen s;
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        s.status = r.feed(p, end);
        return s.status == TreeReply::Status::need_more;
    });
    if (s.status == TreeReply::Status::need_more)
        s.status = r.eof();
    s.fault = r.fault();
    s.code = r.code();
    if (s.status == TreeReply::Status::done) {
        s.size = r.tree().size;
        s.root = r.tree().root;
        s.leaves = r.tree().leaves;
    }
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    fuzz::Pieces pieces(in.seed);
    const Seen whole = read(in.bytes, nullptr);
    check(whole == read(in.bytes, &pieces), "a tree read in pieces differs from it read whole");
    check((whole.status == TreeReply::Status::done) == (whole.fault == TreeReply::Fault::none),
          "a verdict and its fault disagree");
    if (whole.status == TreeReply::Status::done) {
        check(whole.leaves.size() == leaf_count(whole.size), "a tree with the wrong count of leaves");
        TreeHasher h;
        check(h.root(whole.leaves) == whole.root, "a tree whose leaves do not give its id");
    }
    return 0;
}
