// GET_TREE's reply (peerdex-protocol(7), FILE RANGES): `00 size· id· count·`, then count leaf
// hashes of 32 bytes. Accepted only whole and consistent: count leaves for that size, whose
// root is the id (and, for an empty file, the leaf of no bytes). Pure and incremental.
#pragma once

#include <string>

#include "content_tree.hh"
#include "reply.hh"

namespace peerdex {

class TreeReply {
public:
    enum class Status { need_more, done, failed };
    enum class Fault {
        none,
        undecodable,  // not a reply at all (error() says why)
        refused,      // a non-zero code (code())
        bad_head,     // size, id or count malformed, or a count that is not the size's
        wrong_leaves, // the leaves do not give the id
        not_empty,    // the tree of a non-empty file for an empty one
        cut,          // closed before the whole tree
    };

    TreeReply() { reply_.expect_fields(3); }

    // Consumes bytes up to the end of the tree; advances p.
    Status feed(const char*& p, const char* end);
    // The peer closed: a refusal whose decimal code came without its NUL completes here.
    Status eof();

    Fault fault() const { return fault_; }
    int code() const { return reply_.code(); }
    const std::string& error() const { return reply_.error(); }
    bool head_done() const { return head_done_; }
    // After `done`: the tree, its id verified.
    const ContentTree& tree() const { return tree_; }
    ContentTree& tree() { return tree_; }

private:
    Status fail(Fault f)
    {
        fault_ = f;
        return Status::failed;
    }

    ReplyDecoder reply_;
    ContentTree tree_;
    bool head_done_ = false;
    bool finished_ = false;
    Fault fault_ = Fault::none;
    std::size_t want_ = 0;  // leaf bytes in all
    std::string leaves_;
};

}  // namespace peerdex
