#include "content_tree.hh"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "files.hh"

namespace peerdex {

struct TreeHasher::State {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    // Fetched once: OpenSSL 3 would look the implementation up again at every init.
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    ~State()
    {
        EVP_MD_free(md);
        EVP_MD_CTX_free(ctx);
    }
#else
    const EVP_MD* md = EVP_sha256();
    ~State() { EVP_MD_CTX_free(ctx); }
#endif
    void begin(std::uint8_t tag)
    {
        if (!ctx || !md || EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, &tag, 1) != 1)
            std::abort();  // out of memory, or an OpenSSL without SHA-256: nothing sensible to do
    }
    Digest end()
    {
        Digest d;
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(ctx, d.data(), &n) != 1 || n != d.size())
            std::abort();
        return d;
    }
};

TreeHasher::TreeHasher() : state_(std::make_unique<State>()) {}
TreeHasher::~TreeHasher() = default;

void TreeHasher::begin_leaf()
{
    state_->begin(0x00);
}

void TreeHasher::add(const void* data, std::size_t n)
{
    if (n && EVP_DigestUpdate(state_->ctx, data, n) != 1)
        std::abort();
}

Digest TreeHasher::end_leaf()
{
    return state_->end();
}

Digest TreeHasher::leaf(const void* data, std::size_t n)
{
    begin_leaf();
    add(data, n);
    return end_leaf();
}

Digest TreeHasher::node(const Digest& left, const Digest& right)
{
    state_->begin(0x01);
    add(left.data(), left.size());
    add(right.data(), right.size());
    return state_->end();
}

Digest TreeHasher::root(std::vector<Digest> level)
{
    if (level.empty())
        return leaf(nullptr, 0);
    while (level.size() > 1) {
        std::size_t out = 0;
        for (std::size_t i = 0; i < level.size(); i += 2)
            level[out++] = i + 1 < level.size() ? node(level[i], level[i + 1]) : level[i];
        level.resize(out);
    }
    return level[0];
}

HashResult hash_file(int fd, std::uint64_t size, ContentTree& out, std::string& error,
                     const std::function<bool(std::uint64_t)>& progress)
{
    constexpr std::size_t kRead = 1 << 20;
    const std::uint64_t leaf_size = leaf_size_for(size);
    std::vector<char> buf(kRead);
    TreeHasher hasher;
    out = ContentTree();
    out.size = size;
    out.leaves.reserve(leaf_count(size));
    std::uint64_t at = 0;
    do {
        const std::uint64_t end = std::min(size, at + leaf_size);
        hasher.begin_leaf();
        while (at < end) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kRead, end - at));
            const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(at));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                error = n < 0 ? std::strerror(errno) : "the file became shorter while it was read";
                return HashResult::failed;
            }
            hasher.add(buf.data(), static_cast<std::size_t>(n));
            at += static_cast<std::uint64_t>(n);
        }
        out.leaves.push_back(hasher.end_leaf());
        if (progress && !progress(at))
            return HashResult::cancelled;
    } while (at < size);
    out.root = hasher.root(out.leaves);
    return HashResult::ok;
}

FileKey file_key(const struct stat& st)
{
    FileKey k;
    k.device = static_cast<std::uint64_t>(st.st_dev);
    k.inode = static_cast<std::uint64_t>(st.st_ino);
    k.size = static_cast<std::uint64_t>(st.st_size);
    k.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    k.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    return k;
}

std::string tree_cache_dir()
{
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && *xdg == '/')
        return std::string(xdg) + "/peerdex/trees";
    const char* home = std::getenv("HOME");
    if (home && *home == '/')
        return std::string(home) + "/.cache/peerdex/trees";
    return {};
}

namespace {

// One file per (device, inode): a header line, the leaf hashes, the root.
std::string entry_path(const std::string& dir, const FileKey& key)
{
    char name[64];
    std::snprintf(name, sizeof name, "/%" PRIx64 "-%" PRIx64, key.device, key.inode);
    return dir + name;
}

std::string header(const FileKey& key, std::uint64_t leaves)
{
    char line[160];
    std::snprintf(line, sizeof line, "peerdex-tree 1 %" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu64 "\n", key.size,
                  key.mtime_ns, key.ctime_ns, leaves);
    return line;
}

// Creates `dir` and its parents (mode 0700: what a user shares is nobody else's business).
bool make_dirs(const std::string& dir)
{
    for (std::size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/')
            if (::mkdir(dir.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST)
                return false;
    return true;
}

}  // namespace

bool cache_load(const std::string& dir, const FileKey& key, ContentTree& out)
{
    if (dir.empty())
        return false;
    const int fd = ::open(entry_path(dir, key).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const std::size_t count = leaf_count(key.size);
    const std::string expected = header(key, count);
    const std::size_t total = expected.size() + (count + 1) * sizeof(Digest);
    std::string data(total + 1, '\0');  // one more: a longer file is not ours
    std::size_t got = 0;
    for (ssize_t n; got < data.size() && (n = ::read(fd, &data[got], data.size() - got)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got != total || data.compare(0, expected.size(), expected) != 0)
        return false;
    ContentTree tree;
    tree.size = key.size;
    tree.leaves.resize(count);
    std::memcpy(tree.leaves.data(), data.data() + expected.size(), count * sizeof(Digest));
    std::memcpy(tree.root.data(), data.data() + expected.size() + count * sizeof(Digest), sizeof(Digest));
    TreeHasher hasher;
    if (hasher.root(tree.leaves) != tree.root)  // damaged: hash the file again
        return false;
    out = std::move(tree);
    ::utimensat(AT_FDCWD, entry_path(dir, key).c_str(), nullptr, 0);  // used now: pruned last
    return true;
}

std::size_t prune_cache(const std::string& dir, std::uint64_t max_bytes)
{
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return 0;
    struct Entry {
        std::int64_t mtime_ns;
        std::uint64_t bytes;
        std::string name;
    };
    std::vector<Entry> entries;
    std::uint64_t total = 0;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' || std::strchr(e->d_name, '-') == nullptr)
            continue;
        struct stat st;
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        const auto bytes = static_cast<std::uint64_t>(st.st_size);
        entries.push_back({static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, bytes,
                           e->d_name});
        total += bytes;
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.mtime_ns < b.mtime_ns; });
    std::size_t removed = 0;
    for (const auto& e : entries) {
        if (total <= max_bytes)
            break;
        if (::unlinkat(::dirfd(d), e.name.c_str(), 0) == 0) {
            total -= e.bytes;
            ++removed;
        }
    }
    ::closedir(d);
    return removed;
}

bool cache_store(const std::string& dir, const FileKey& key, const ContentTree& tree, std::string& error)
{
    if (dir.empty()) {
        error = "no cache directory (neither XDG_CACHE_HOME nor HOME is set)";
        return false;
    }
    if (!make_dirs(dir)) {
        error = dir + ": " + std::strerror(errno);
        return false;
    }
    const std::string path = entry_path(dir, key);
    const std::string aside = path + ".tmp" + std::to_string(::getpid());
    const int fd = ::open(aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = aside + ": " + std::strerror(errno);
        return false;
    }
    const std::string head = header(key, tree.leaves.size());
    const bool ok = write_all(fd, head.data(), head.size()) &&
                    write_all(fd, tree.leaves.data(), tree.leaves.size() * sizeof(Digest)) &&
                    write_all(fd, tree.root.data(), tree.root.size());
    const int saved = errno;
    if (::close(fd) != 0 || !ok || ::rename(aside.c_str(), path.c_str()) != 0) {
        error = path + ": " + std::strerror(ok ? errno : saved);
        ::unlink(aside.c_str());
        return false;
    }
    static std::atomic<bool> pruned{false};  // pool threads store at once
    if (!pruned.exchange(true))
        prune_cache(dir, kTreeCacheBytes);
    return true;
}

HashResult tree_of_fd(int fd, const std::string& dir, ContentTree& out, bool& cached, std::string& error,
                      const std::function<bool(std::uint64_t)>& progress)
{
    cached = false;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        error = std::strerror(errno);
        return HashResult::failed;
    }
    if (!S_ISREG(st.st_mode)) {
        error = "not a regular file";
        return HashResult::failed;
    }
    const FileKey key = file_key(st);
    if (cache_load(dir, key, out)) {
        cached = true;
        return HashResult::ok;
    }
    HashResult r = hash_file(fd, key.size, out, error, progress);
    struct stat after;
    if (r == HashResult::ok && (::fstat(fd, &after) != 0 || !(file_key(after) == key))) {
        error = "the file changed while it was hashed";
        r = HashResult::failed;
    }
    if (r == HashResult::ok && !dir.empty()) {
        std::string ignored;  // a cache that cannot be written costs a hash next time, nothing more
        cache_store(dir, key, out, ignored);
    }
    return r;
}

HashResult tree_of(const std::string& path, const std::string& dir, ContentTree& out, bool& cached,
                   std::string& error, const std::function<bool(std::uint64_t)>& progress)
{
    cached = false;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = std::strerror(errno);
        return HashResult::failed;
    }
    const HashResult r = tree_of_fd(fd, dir, out, cached, error, progress);
    ::close(fd);
    return r;
}

}  // namespace peerdex
