#include "partial_file.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <vector>

#include "files.hh"

namespace peerdex {

namespace {
constexpr std::string_view kSuffix = ".peerdex-part";
constexpr std::size_t kNameMax = 255;
constexpr std::size_t kReadBytes = 256 * 1024;
// A record lists at most this many runs of verified leaves (a longer list is cut: the
// record then claims less than is there, never more). 4096 runs fit in 64 KiB.
constexpr std::size_t kMaxRuns = 4096;
constexpr std::size_t kMaxRecordBytes = 64 * 1024;

bool read_small_file(int dir, const std::string& name, std::string& out)
{
    const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    out.assign(kMaxRecordBytes + 1, '\0');
    std::size_t got = 0;
    for (;;) {
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += static_cast<std::size_t>(n);
        if (got == out.size())
            break;
    }
    ::close(fd);
    out.resize(got);
    return got > 0 && got <= kMaxRecordBytes;
}

// The next "\n"-ended line of `text` from `at`; false at the end or on a line too long.
bool next_line(const std::string& text, std::size_t& at, std::string& line)
{
    const auto nl = text.find('\n', at);
    if (nl == std::string::npos || nl - at > 200)
        return false;
    line = text.substr(at, nl - at);
    at = nl + 1;
    return true;
}

bool parse_u64(const std::string& s, std::uint64_t& out)
{
    if (s.empty() || s.size() > 20)
        return false;
    std::uint64_t v = 0;
    for (const char ch : s) {
        if (ch < '0' || ch > '9')
            return false;
        const std::uint64_t d = static_cast<std::uint64_t>(ch - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    out = v;
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

std::uint64_t PartialFile::leaf_length(std::uint64_t leaf) const
{
    return std::min(leaf_, tree_->size - leaf * leaf_);
}

std::uint64_t PartialFile::kept_end() const
{
    for (std::size_t i = have_.size(); i-- > 0;)
        if (have_[i])
            return i * leaf_ + leaf_length(i);
    return 0;
}

// The record, version 2: "peerdex-part 2", the id, the size, then one line "FIRST COUNT"
// per run of verified leaves. Version 1 (one source, in order) had the count of verified
// leading bytes where the runs are.
bool PartialFile::load_record(std::vector<std::uint8_t>& have) const
{
    std::string text;
    return read_small_file(dir_, record_, text) && parse_part_record(text, id_, tree_->size, have);
}

bool parse_part_record(const std::string& text, std::string_view id, std::uint64_t size,
                       std::vector<std::uint8_t>& have)
{
    const std::uint64_t leaf = leaf_size_for(size);
    const auto length = [&](std::uint64_t i) { return std::min(leaf, size - i * leaf); };
    std::string line;
    std::size_t at = 0;
    std::uint64_t recorded = 0;
    if (!next_line(text, at, line) || (line != "peerdex-part 1" && line != "peerdex-part 2"))
        return false;
    const bool v1 = line == "peerdex-part 1";
    if (!next_line(text, at, line) || line != id)
        return false;
    if (!next_line(text, at, line) || !parse_u64(line, recorded) || recorded != size)
        return false;
    const std::size_t count = have.size();
    if (v1) {
        std::uint64_t verified = 0;
        if (!next_line(text, at, line) || !parse_u64(line, verified) || at != text.size() || verified > size ||
            (verified % leaf != 0 && verified != size))
            return false;
        for (std::size_t i = 0; i < count && i * leaf + length(i) <= verified && verified > 0; ++i)
            have[i] = 1;
        return true;
    }
    while (at < text.size()) {
        if (!next_line(text, at, line))
            return false;
        const auto space = line.find(' ');
        std::uint64_t first = 0, n = 0;
        if (space == std::string::npos || !parse_u64(line.substr(0, space), first) ||
            !parse_u64(line.substr(space + 1), n) || n == 0 || first >= count || n > count - first)
            return false;
        // Both within count (checked above), so each fits a size_t.
        for (auto i = static_cast<std::size_t>(first), e = i + static_cast<std::size_t>(n); i < e; ++i)
            have[i] = 1;
    }
    return true;
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
    have_.assign(leaf_count(tree.size), 0);
    verified_ = reused_ = 0;

    ::unlinkat(dir_, (record_ + ".new").c_str(), 0);  // a record being replaced when a run died
    std::vector<std::uint8_t> recorded(have_.size(), 0);
    const bool same = resume && load_record(recorded);
    fd_ = ::openat(dir_, part_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (same ? 0 : O_TRUNC), 0666);
    if (fd_ < 0)
        return errno;
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
        return errno;
    const std::uint64_t file_size = static_cast<std::uint64_t>(st.st_size);
    if (same && tree.size > 0) {
        // A record that claims bytes the file does not hold is not trusted at all.
        bool fits = true;
        for (std::size_t i = 0; i < have_.size() && fits; ++i)
            fits = !recorded[i] || i * leaf_ + leaf_length(i) <= file_size;
        if (fits)
            have_ = recorded;
        // Whole leaves written after the last save are kept if they match; holes (never
        // written) are skipped without reading them.
        std::vector<char> buf(kReadBytes);
        TreeHasher hasher;
        for (std::size_t i = 0; i < have_.size(); ++i) {
            const std::uint64_t start = i * leaf_, len = leaf_length(i);
            if (start + len > file_size)
                break;
            if (have_[i])
                continue;
            const off_t data = ::lseek(fd_, static_cast<off_t>(start), SEEK_DATA);
            if (data < 0 && errno == ENXIO)
                break;  // nothing but a hole from here on
            if (data >= 0 && static_cast<std::uint64_t>(data) != start)
                continue;  // a hole where the leaf starts: never written
            hasher.begin_leaf();
            bool ok = true;
            for (std::uint64_t at = 0; at < len && ok;) {
                const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), len - at));
                const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(start + at));
                ok = n == static_cast<ssize_t>(want);
                if (ok)
                    hasher.add(buf.data(), want);
                at += want;
            }
            if (ok && hasher.end_leaf() == tree.leaves[i])
                have_[i] = 1;
        }
    }
    for (std::size_t i = 0; i < have_.size(); ++i)
        if (have_[i])
            verified_ += leaf_length(i);
    reused_ = verified_;
    const std::uint64_t keep = kept_end();
    if (file_size != keep && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0)
        return errno;
    // The record on disk must never claim more than what is trusted now.
    if (!same || have_ != recorded)
        if (const int err = save(record_text()); err != 0)
            return err;
    return 0;
}

PartialFile::Write PartialFile::write_at(Cursor& c, const char* p, std::size_t n)
{
    c.matched.clear();
    while (n > 0) {
        const std::uint64_t at_leaf = c.pos / leaf_;
        if (at_leaf >= have_.size()) {
            c.err = EFBIG;  // more than the file's size: the caller checks, this is a backstop
            return Write::error;
        }
        const auto leaf = static_cast<std::size_t>(at_leaf);  // below have_.size()
        const std::uint64_t start = leaf * leaf_, end = start + leaf_length(leaf);
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(end - c.pos, n));
        if (take == 0) {
            c.err = EFBIG;
            return Write::error;
        }
        if (!pwrite_all(fd_, p, take, c.pos)) {
            c.err = errno;
            return Write::error;
        }
        if (!c.leaf_open) {
            c.hasher.begin_leaf();
            c.leaf_open = true;
        }
        c.hasher.add(p, take);
        c.pos += take;
        p += take;
        n -= take;
        if (c.pos == end) {
            c.leaf_open = false;
            if (c.hasher.end_leaf() != tree_->leaves[leaf]) {
                c.bad_leaf = leaf;
                c.pos = start;
                return Write::bad_leaf;
            }
            c.matched.push_back(leaf);
        }
    }
    return Write::ok;
}

void PartialFile::mark(std::size_t leaf)
{
    if (leaf < have_.size() && !have_[leaf]) {
        have_[leaf] = 1;
        verified_ += leaf_length(leaf);
    }
}

std::string PartialFile::record_text() const
{
    char line[64];
    std::string text = "peerdex-part 2\n" + id_ + "\n" + std::to_string(tree_->size) + "\n";
    std::size_t runs = 0;
    for (std::size_t i = 0; i < have_.size() && runs < kMaxRuns;) {
        if (!have_[i]) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < have_.size() && have_[j])
            ++j;
        std::snprintf(line, sizeof line, "%zu %zu\n", i, j - i);
        text += line;
        ++runs;
        i = j;
    }
    return text;
}

int PartialFile::save(const std::string& text)
{
    if (fd_ < 0)
        return EBADF;
    if (::fdatasync(fd_) != 0)
        return errno;
    const std::string aside = record_ + ".new";
    const int fd = ::openat(dir_, aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return errno;
    const bool ok = write_all(fd, text.data(), text.size());
    const int err = errno;
    ::close(fd);
    if (!ok || ::renameat(dir_, aside.c_str(), dir_, record_.c_str()) != 0) {
        const int e = ok ? errno : err;
        ::unlinkat(dir_, aside.c_str(), 0);
        return e;
    }
    return 0;
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
    if (verified_ == 0 || save(record_text()) != 0) {
        discard();
        return 0;
    }
    (void)!::ftruncate(fd_, static_cast<off_t>(kept_end()));  // a leaf cut halfway is fetched again
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
