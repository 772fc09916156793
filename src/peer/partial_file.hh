// A verified download's data while it is not complete (peerdex-protocol(7), FILE RANGES;
// peerdex(1), RESUMING DOWNLOADS): a hidden file beside the target, ".NAME.peerdex-part",
// and its record ".NAME.peerdex-part.rec" (the content id, the size, and which leaves are
// verified). Leaves arrive in any order, from one source or several at once: each stream of
// bytes has its Cursor, writes in place and hashes what it wrote; a leaf is verified when
// its last byte arrives and matches the tree, and only then marked. The target name appears
// only by commit(), once every leaf matched.
//
// Threads: open(), write_at(), save(), commit(), close_keep() and discard() may block (thread
// pool only). write_at() calls for different cursors may run at once; everything else runs
// one at a time, and mark() and record_text() only while no save() runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "content_tree.hh"

namespace peerdex {

// Reads a partial's record (see partial_file.cc) for the file of content id `id` and `size`:
// marks in `have` (one entry per leaf, leaf_count(size) of them) the leaves it says are
// verified. False when it is not a record of that file or not a record at all; `have` may
// then hold marks, and the caller drops them.
bool parse_part_record(const std::string& text, std::string_view id, std::uint64_t size,
                       std::vector<std::uint8_t>& have);

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
    // record names the same id and size: the recorded leaves, then every whole leaf written
    // since that matches the tree; anything else there is dropped. Returns 0 or an errno.
    int open(int dir_fd, const std::string& name, const ContentTree& tree, bool resume);
    std::uint64_t leaf_size() const { return leaf_; }
    std::size_t leaves() const { return have_.size(); }
    bool has(std::size_t leaf) const { return have_[leaf] != 0; }
    // Bytes verified so far; reused(): what open() kept from an earlier run.
    std::uint64_t verified() const { return verified_; }
    std::uint64_t reused() const { return reused_; }
    bool complete() const { return verified_ == tree_->size; }

    // One stream of bytes written in place from `pos`, a leaf boundary.
    struct Cursor {
        std::uint64_t pos = 0;
        TreeHasher hasher;
        bool leaf_open = false;
        std::vector<std::size_t> matched;  // leaves the last write_at() completed, each matching
        std::size_t bad_leaf = 0;          // bad_leaf: the leaf that did not match
        int err = 0;                          // error: the errno
    };
    enum class Write { ok, bad_leaf, error };
    // Writes `n` bytes at c.pos and hashes them; each leaf they complete is checked and goes
    // to c.matched (for mark()). bad_leaf: that leaf did not match; c.pos is back at its
    // start and the bytes after it in this call are not written.
    Write write_at(Cursor& c, const char* p, std::size_t n);
    // A leaf that write_at() matched: it counts as verified from now on.
    void mark(std::size_t leaf);
    // The record of the leaves marked so far, for save().
    std::string record_text() const;
    // Makes the data durable, then the record `text` (data synced before the record).
    int save(const std::string& text);
    // Synced and given the target's name; the record is removed. Only when complete().
    int commit();
    // Leaves the partial for a later run (saved, cut after its last verified leaf) when it
    // holds verified bytes, else removes it; closes. Returns the bytes kept.
    std::uint64_t close_keep();
    // Removes the partial and its record; closes.
    void discard();

private:
    bool load_record(std::vector<std::uint8_t>& have) const;
    std::uint64_t leaf_length(std::uint64_t leaf) const;
    // The end of the last verified leaf: what close_keep() and open() keep of the file.
    std::uint64_t kept_end() const;

    int dir_ = -1, fd_ = -1;
    std::string name_, part_, record_;
    const ContentTree* tree_ = nullptr;
    std::string id_;
    std::uint64_t leaf_ = 0;               // leaf size
    std::vector<std::uint8_t> have_;       // per leaf: verified
    std::uint64_t verified_ = 0;           // bytes in verified leaves
    std::uint64_t reused_ = 0;
};

}  // namespace peerdex
