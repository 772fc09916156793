// A file's content tree (content_id.hh): its leaf hashes and root, hashed with OpenSSL's
// SHA-256 (which uses the CPU's SHA instructions where there are some), and the client's
// cache of trees, so that a file is hashed once, not at every PUBLISH or start.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "content_id.hh"

namespace peerdex {

struct ContentTree {
    std::uint64_t size = 0;
    std::vector<Digest> leaves;  // leaf_count(size) of them
    Digest root{};
};

// Hashes leaves and nodes (not thread-safe: one per thread).
class TreeHasher {
public:
    TreeHasher();
    ~TreeHasher();
    TreeHasher(const TreeHasher&) = delete;
    TreeHasher& operator=(const TreeHasher&) = delete;

    // A leaf of bytes given in one or more pieces: begin_leaf, add..., end_leaf.
    void begin_leaf();
    void add(const void* data, std::size_t n);
    Digest end_leaf();
    Digest leaf(const void* data, std::size_t n);
    Digest node(const Digest& left, const Digest& right);
    // The root over these leaves.
    Digest root(std::vector<Digest> level);

private:
    struct State;
    std::unique_ptr<State> state_;
};

enum class HashResult { ok, cancelled, failed };

// Hashes `size` bytes of the open file `fd` from its start. `progress(bytes done)` is called
// after each leaf; returning false cancels. `error` says what failed.
HashResult hash_file(int fd, std::uint64_t size, ContentTree& out, std::string& error,
                     const std::function<bool(std::uint64_t)>& progress = {});

// What a cached tree is valid for: the same file (device, inode) unchanged since (size,
// modification and change times; the change time cannot be set back by `touch -r`).
struct FileKey {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    bool operator==(const FileKey& o) const
    {
        return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns &&
               ctime_ns == o.ctime_ns;
    }
};
FileKey file_key(const struct stat& st);

// $XDG_CACHE_HOME/peerdex/trees, else ~/.cache/peerdex/trees; empty when neither is set.
std::string tree_cache_dir();
// The cached tree of `key` when there is one, whole and matching; false otherwise.
bool cache_load(const std::string& dir, const FileKey& key, ContentTree& out);
// Stores it (written aside, then renamed into place); false and `error` on failure. The
// first store of a process also prunes the cache to kTreeCacheBytes.
bool cache_store(const std::string& dir, const FileKey& key, const ContentTree& tree, std::string& error);
// The cache's size bound: entries (one per file hashed, 32 bytes per leaf) least recently
// used go first. 64 MiB holds the trees of about 2 TiB of files.
constexpr std::uint64_t kTreeCacheBytes = 64ull << 20;
// Removes the least recently used entries (by modification time, which a load renews)
// until the entries of `dir` take at most `max_bytes`; returns how many it removed.
std::size_t prune_cache(const std::string& dir, std::uint64_t max_bytes);

// The tree of the file at `path`: from the cache (`dir`; none when empty) when it matches
// the file as it is now, else hashed and stored. `cached` says which.
HashResult tree_of(const std::string& path, const std::string& dir, ContentTree& out, bool& cached,
                   std::string& error, const std::function<bool(std::uint64_t)>& progress = {});

// The same for a file already open (the peer listener's GET_TREE).
HashResult tree_of_fd(int fd, const std::string& dir, ContentTree& out, bool& cached, std::string& error,
                      const std::function<bool(std::uint64_t)>& progress = {});

}  // namespace peerdex
