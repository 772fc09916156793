#include "tree_reply.hh"

#include <algorithm>
#include <cstring>

namespace peerdex {

TreeReply::Status TreeReply::feed(const char*& p, const char* end)
{
    if (finished_)
        return fault_ == Fault::none ? Status::done : Status::failed;
    if (!head_done_) {
        const auto st = reply_.feed(p, end);
        if (st == ReplyDecoder::Status::need_more)
            return Status::need_more;
        finished_ = st == ReplyDecoder::Status::error || reply_.code() != 0;
        if (st == ReplyDecoder::Status::error)
            return fail(Fault::undecodable);
        if (reply_.code() != 0)
            return fail(Fault::refused);
        const auto size = parse_decimal(reply_.fields()[0], UINT64_MAX / 2);
        const auto count = parse_decimal(reply_.fields()[2], kMaxLeaves);
        if (!size || !count || *count != leaf_count(*size) || !parse_content_id(reply_.fields()[1], tree_.root)) {
            finished_ = true;
            return fail(Fault::bad_head);
        }
        tree_.size = *size;
        want_ = static_cast<std::size_t>(*count) * sizeof(Digest);
        leaves_.reserve(want_);
        head_done_ = true;
    }
    const auto n = std::min<std::size_t>(static_cast<std::size_t>(end - p), want_ - leaves_.size());
    leaves_.append(p, n);
    p += n;
    if (leaves_.size() < want_)
        return Status::need_more;
    finished_ = true;
    tree_.leaves.resize(want_ / sizeof(Digest));
    std::memcpy(tree_.leaves.data(), leaves_.data(), want_);
    leaves_.clear();
    leaves_.shrink_to_fit();
    TreeHasher h;
    if (h.root(tree_.leaves) != tree_.root)
        return fail(Fault::wrong_leaves);
    // No byte will check the leaf of an empty file: the tree itself must be that of one.
    if (tree_.size == 0 && tree_.leaves[0] != h.leaf(nullptr, 0))
        return fail(Fault::not_empty);
    return Status::done;
}

TreeReply::Status TreeReply::eof()
{
    if (finished_)
        return fault_ == Fault::none ? Status::done : Status::failed;
    finished_ = true;
    if (!head_done_ && reply_.eof() == ReplyDecoder::Status::done && reply_.code() != 0)
        return fail(Fault::refused);
    return fail(Fault::cut);
}

}  // namespace peerdex
