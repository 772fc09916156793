#include "partial_file.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <vector>

namespace peerdex {

namespace {
constexpr std::string_view kSuffix = ".peerdex-part";
constexpr std::size_t kNameMax = 255;
// A checkpoint (a data sync, then the record) at least this often while data arrives:
// a cut loses at most this much verified work, plus the leaf under way.
constexpr std::uint64_t kCheckpointBytes = 64ull << 20;
constexpr std::size_t kReadBytes = 256 * 1024;

bool write_all(int fd, const char* p, std::size_t n)
{
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool pwrite_all(int fd, const char* p, std::size_t n, std::uint64_t at)
{
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        at += static_cast<std::uint64_t>(w);
    }
    return true;
}

// The record: "peerdex-part 1", the id, the size, the verified bytes, one per line.
bool read_record(int dir, const std::string& name, std::string& id, std::uint64_t& size, std::uint64_t& verified)
{
    const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char idbuf[128];
    unsigned long long s = 0, v = 0;
    int used = 0;
    if (std::sscanf(buf, "peerdex-part 1\n%127s\n%llu\n%llu\n%n", idbuf, &s, &v, &used) != 3 || used != n || v > s)
        return false;
    id = idbuf;
    size = s;
    verified = v;
    return true;
}
}  // namespace

std::string PartialFile::part_name(const std::string& name)
{
    if (1 + name.size() + kSuffix.size() + 4 <= kNameMax)
        return "." + name + std::string(kSuffix);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(name));
    return std::string(kSuffix) + "-" + hex;  // a name too long to carry a prefix and suffix
}

PartialFile::~PartialFile()
{
    if (fd_ >= 0)
        ::close(fd_);
}

int PartialFile::open(int dir_fd, const std::string& name, const ContentTree& tree, bool resume)
{
    dir_ = dir_fd;
    name_ = name;
    part_ = part_name(name);
    record_ = record_name(name);
    tree_ = &tree;
    id_ = content_id_text(tree.root);
    leaf_ = leaf_size_for(tree.size);
    verified_ = written_ = recorded_ = reused_ = 0;
    leaf_open_ = false;

    ::unlinkat(dir_, (record_ + ".new").c_str(), 0);  // a record being replaced when a run died
    std::string rec_id;
    std::uint64_t rec_size = 0, rec_verified = 0;
    const bool same = resume && read_record(dir_, record_, rec_id, rec_size, rec_verified) && rec_id == id_ &&
                      rec_size == tree.size;
    fd_ = ::openat(dir_, part_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (same ? 0 : O_TRUNC), 0666);
    if (fd_ < 0)
        return errno;
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
        return errno;
    const std::uint64_t have = static_cast<std::uint64_t>(st.st_size);
    if (same && rec_verified <= have && (rec_verified % leaf_ == 0 || rec_verified == tree.size)) {
        verified_ = rec_verified;
        // Whole leaves written after the last checkpoint are kept if they match.
        std::vector<char> buf(kReadBytes);
        while (verified_ < tree.size) {
            const std::uint64_t len = std::min(leaf_, tree.size - verified_);
            if (verified_ + len > have)
                break;
            hasher_.begin_leaf();
            bool ok = true;
            for (std::uint64_t at = 0; at < len && ok;) {
                const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), len - at));
                const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(verified_ + at));
                ok = n == static_cast<ssize_t>(want);
                if (ok)
                    hasher_.add(buf.data(), want);
                at += want;
            }
            if (!ok || hasher_.end_leaf() != tree.leaves[verified_ / leaf_])
                break;
            verified_ += len;
        }
        recorded_ = rec_verified;
    }
    reused_ = verified_;
    written_ = verified_;
    if (have != verified_ && ::ftruncate(fd_, static_cast<off_t>(verified_)) != 0)
        return errno;
    // The record on disk must never claim more than what is trusted now.
    if (!same || verified_ != rec_verified)
        if (const int err = verified_ > 0 ? checkpoint() : write_record(); err != 0)
            return err;
    return 0;
}

PartialFile::Write PartialFile::write(const char* p, std::size_t n)
{
    while (n > 0) {
        const std::uint64_t leaf_start = verified_;
        const std::uint64_t leaf_len = std::min(leaf_, tree_->size - leaf_start);
        const std::uint64_t room = leaf_start + leaf_len - written_;
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(room, n));
        if (take == 0) {
            err_ = EFBIG;  // more than the file's size: the caller checks, this is a backstop
            return Write::error;
        }
        if (!pwrite_all(fd_, p, take, written_)) {
            err_ = errno;
            return Write::error;
        }
        if (!leaf_open_) {
            hasher_.begin_leaf();
            leaf_open_ = true;
        }
        hasher_.add(p, take);
        written_ += take;
        p += take;
        n -= take;
        if (written_ == leaf_start + leaf_len) {
            leaf_open_ = false;
            const std::uint64_t index = leaf_start / leaf_;
            if (hasher_.end_leaf() != tree_->leaves[index]) {
                bad_leaf_ = index;
                written_ = verified_;
                if (::ftruncate(fd_, static_cast<off_t>(verified_)) != 0) {
                    err_ = errno;
                    return Write::error;
                }
                return Write::bad_leaf;
            }
            verified_ = written_;
            if (verified_ - recorded_ >= kCheckpointBytes && verified_ < tree_->size)
                if ((err_ = checkpoint()) != 0)
                    return Write::error;
        }
    }
    return Write::ok;
}

int PartialFile::write_record()
{
    char text[256];
    const int len = std::snprintf(text, sizeof text, "peerdex-part 1\n%s\n%" PRIu64 "\n%" PRIu64 "\n", id_.c_str(),
                                  tree_->size, verified_);
    const std::string aside = record_ + ".new";
    const int fd = ::openat(dir_, aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return errno;
    const bool ok = write_all(fd, text, static_cast<std::size_t>(len));
    const int err = errno;
    ::close(fd);
    if (!ok || ::renameat(dir_, aside.c_str(), dir_, record_.c_str()) != 0) {
        const int e = ok ? errno : err;
        ::unlinkat(dir_, aside.c_str(), 0);
        return e;
    }
    recorded_ = verified_;
    return 0;
}

int PartialFile::checkpoint()
{
    if (fd_ < 0)
        return EBADF;
    if (::fdatasync(fd_) != 0)
        return errno;
    return write_record();
}

int PartialFile::commit()
{
    if (fd_ < 0 || !complete())
        return EINVAL;
    if (::fsync(fd_) != 0)
        return errno;
    if (::renameat(dir_, part_.c_str(), dir_, name_.c_str()) != 0)
        return errno;
    ::unlinkat(dir_, record_.c_str(), 0);
    ::fsync(dir_);  // the new name survives a power cut
    ::close(fd_);
    fd_ = -1;
    return 0;
}

std::uint64_t PartialFile::close_keep()
{
    if (fd_ < 0)
        return 0;
    if (verified_ == 0 || checkpoint() != 0) {
        discard();
        return 0;
    }
    if (written_ != verified_)
        (void)!::ftruncate(fd_, static_cast<off_t>(verified_));  // a leaf cut halfway is fetched again
    ::close(fd_);
    fd_ = -1;
    return verified_;
}

void PartialFile::discard()
{
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (dir_ >= 0 && !part_.empty()) {
        ::unlinkat(dir_, part_.c_str(), 0);
        ::unlinkat(dir_, record_.c_str(), 0);
    }
}

}  // namespace peerdex
