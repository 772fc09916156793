// A verified download's data while it is not complete (peerdex-protocol(7), FILE RANGES;
// peerdex(1), RESUMING DOWNLOADS): a hidden file beside the target, ".NAME.peerdex-part",
// and its record ".NAME.peerdex-part.rec" (the content id, the size, and how many leading
// bytes are verified). Bytes arrive in order from the verified end; each leaf is checked
// against the tree as it completes, and a leaf that does not match is cut off again. The
// target name appears only by commit(), once every leaf matched. Every call may block:
// thread pool only, one at a time.
#pragma once

#include <cstdint>
#include <string>

#include "content_tree.hh"

namespace peerdex {

class PartialFile {
public:
    PartialFile() = default;
    PartialFile(const PartialFile&) = delete;
    PartialFile& operator=(const PartialFile&) = delete;
    ~PartialFile();

    // The hidden names of the partial and its record for target `name`.
    static std::string part_name(const std::string& name);
    static std::string record_name(const std::string& name) { return part_name(name) + ".rec"; }

    // Opens the partial of `name` in the directory open as dir_fd (kept open by the caller)
    // for the file `tree` describes. With `resume`, keeps what an earlier run left when its
    // record names the same id and size: the recorded bytes, then every whole leaf after
    // them that matches the tree; anything else there is dropped. Returns 0 or an errno.
    int open(int dir_fd, const std::string& name, const ContentTree& tree, bool resume);
    // Bytes already verified: after open(), what was reused.
    std::uint64_t verified() const { return verified_; }
    std::uint64_t reused() const { return reused_; }
    bool complete() const { return verified_ == tree_->size; }

    enum class Write { ok, bad_leaf, error };
    // Appends `n` bytes at the end written so far, hashing them; each leaf they complete
    // is checked. bad_leaf: that leaf (bad_leaf() its index) did not match and was cut off.
    Write write(const char* p, std::size_t n);
    std::uint64_t bad_leaf() const { return bad_leaf_; }
    int error() const { return err_; }
    // Makes the verified bytes durable and records them (data synced before the record).
    int checkpoint();
    // Synced and given the target's name; the record is removed. Only when complete().
    int commit();
    // Leaves the partial for a later run (checkpointed) when it holds verified bytes,
    // else removes it; closes. Returns the bytes kept.
    std::uint64_t close_keep();
    // Removes the partial and its record; closes.
    void discard();

private:
    int write_record();

    int dir_ = -1, fd_ = -1;
    std::string name_, part_, record_;
    const ContentTree* tree_ = nullptr;
    std::string id_;
    std::uint64_t leaf_ = 0;        // leaf size
    std::uint64_t verified_ = 0;    // leading bytes that matched the tree
    std::uint64_t written_ = 0;     // bytes in the file (the current leaf is written_ - verified_)
    std::uint64_t recorded_ = 0;    // what the record on disk says
    std::uint64_t reused_ = 0;
    std::uint64_t bad_leaf_ = 0;
    int err_ = 0;
    TreeHasher hasher_;
    bool leaf_open_ = false;
};

}  // namespace peerdex
