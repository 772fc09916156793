// What a peer listener shares (peerdex-protocol(7), PEER TRANSFERS and FILE SERVER): the
// exact paths its connected user published, or the regular files directly inside one
// directory (`peerdex serve`). The listener moves bytes; this says what a name means.
// check() runs on the loop; open() and list() block and run on the thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "files.hh"

namespace peerdex {

class SharedFiles {
public:
    virtual ~SharedFiles() = default;
    // Why GET_FILE of `name` is refused before any disk access; empty when it may go on.
    virtual const char* check(const std::string& name) const = 0;
    // Opens `name` for reading (a regular file only): a descriptor and its size, or -errno.
    virtual int open(const std::string& name, std::uint64_t& size) const = 0;
    // A listing job for the pool, bound to what is shared now: the regular files, or an
    // errno value in `err`.
    virtual std::function<std::vector<FileEntry>(int& err)> lister() const = 0;
    // The directory uploads are stored into, or -1 when PUT_FILE is refused.
    virtual int upload_dir() const { return -1; }
};

// The interactive client's set: nothing but the published strings, no resolution of
// "..", nothing else on disk. Uploads are refused.
class PublishedFiles final : public SharedFiles {
public:
    void publish(const std::string& path) { paths_.insert(path); }
    void unpublish(const std::string& path) { paths_.erase(path); }
    void set(std::unordered_set<std::string> paths) { paths_ = std::move(paths); }
    bool contains(const std::string& path) const { return paths_.count(path) != 0; }

    const char* check(const std::string& name) const override;
    int open(const std::string& name, std::uint64_t& size) const override;
    std::function<std::vector<FileEntry>(int& err)> lister() const override;

private:
    std::unordered_set<std::string> paths_;
};

// `peerdex serve`: plain names inside the directory open as dir_fd (kept open by the
// caller), never following a symbolic link out of it.
class SharedDirectory final : public SharedFiles {
public:
    SharedDirectory(int dir_fd, bool read_only) : dir_(dir_fd), read_only_(read_only) {}

    const char* check(const std::string& name) const override;
    int open(const std::string& name, std::uint64_t& size) const override;
    std::function<std::vector<FileEntry>(int& err)> lister() const override;
    int upload_dir() const override { return read_only_ ? -1 : dir_; }

private:
    int dir_;
    bool read_only_;
};

}  // namespace peerdex
