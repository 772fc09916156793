// Content ids (content_id.hh) and the client's trees and their cache (content_tree.hh). The
// expected roots were computed apart, with Python's hashlib, from the rules written in
// content_id.hh.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "content_id.hh"
#include "content_tree.hh"
#include "tree_reply.hh"

namespace peerdex {
namespace {

std::string pattern(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>(i % 251);
    return s;
}

std::string id_of(const std::string& data)
{
    char tmpl[] = "/tmp/peerdex-tree-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ContentTree tree;
    std::string error;
    EXPECT_EQ(hash_file(fd, data.size(), tree, error), HashResult::ok) << error;
    ::close(fd);
    ::unlink(tmpl);
    EXPECT_EQ(tree.leaves.size(), leaf_count(data.size()));
    return content_id_text(tree.root);
}

TEST(ContentId, KnownRoots)
{
    EXPECT_EQ(id_of(""), "sha256:6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    EXPECT_EQ(id_of("hello"), "sha256:8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827");
    // Three leaves, the last one short and promoted unpaired; then four whole leaves.
    EXPECT_EQ(id_of(pattern(5 << 19)), "sha256:f3bf0b960e20eefd34582e8b3750ae103e53d4553d3318004f6a45b1b4d5e672");
    EXPECT_EQ(id_of(pattern(3 << 20)), "sha256:062d9057692524803edcdf17d4b5465325bbb35d99cc9c65907aa4f0dfa4449c");
}

TEST(ContentId, LeafSizeKeepsTheTreeBounded)
{
    EXPECT_EQ(leaf_size_for(0), kMinLeafSize);
    EXPECT_EQ(leaf_count(0), 1u);
    EXPECT_EQ(leaf_count(1), 1u);
    EXPECT_EQ(leaf_count(kMinLeafSize), 1u);
    EXPECT_EQ(leaf_count(kMinLeafSize + 1), 2u);
    EXPECT_EQ(leaf_size_for(kMinLeafSize * kMaxLeaves), kMinLeafSize);  // 64 GiB: the last at 1 MiB
    EXPECT_EQ(leaf_size_for(kMinLeafSize * kMaxLeaves + 1), 2 * kMinLeafSize);
    EXPECT_EQ(leaf_count(kMinLeafSize * kMaxLeaves + 1), kMaxLeaves / 2 + 1);
    for (const std::uint64_t size : {std::uint64_t(1) << 40, std::uint64_t(1) << 50, ~std::uint64_t(0)})
        EXPECT_LE(leaf_count(size), kMaxLeaves) << size;
}

TEST(ContentId, TextRoundTripsAndRefusesOtherShapes)
{
    Digest d;
    for (std::size_t i = 0; i < d.size(); ++i)
        d[i] = static_cast<std::uint8_t>(i * 37);
    const std::string text = content_id_text(d);
    Digest back{};
    ASSERT_TRUE(parse_content_id(text, back));
    EXPECT_EQ(back, d);
    std::string upper = text;
    for (std::size_t i = 7; i < upper.size(); ++i)
        upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    EXPECT_TRUE(parse_content_id(upper, back));
    EXPECT_EQ(back, d);
    for (const std::string& bad : {std::string(""), text.substr(0, text.size() - 1), text + "0", "b2:" + text.substr(7),
                                  "sha256:" + std::string(63, '0') + "g", "SHA256:" + text.substr(7)})
        EXPECT_FALSE(parse_content_id(bad, back)) << bad;
}

TEST(TreeHasher, RootOfOneLeafIsTheLeafAndOrderMatters)
{
    TreeHasher h;
    const Digest a = h.leaf("a", 1), b = h.leaf("b", 1);
    EXPECT_EQ(h.root({a}), a);
    EXPECT_EQ(h.root({a, b}), h.node(a, b));
    EXPECT_NE(h.root({a, b}), h.root({b, a}));
    EXPECT_NE(h.node(a, b), h.leaf(nullptr, 0));
    // A leaf in pieces is the leaf at once.
    h.begin_leaf();
    h.add("he", 2);
    h.add("llo", 3);
    const Digest pieces = h.end_leaf();
    EXPECT_EQ(pieces, h.leaf("hello", 5));
}

class Cache : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/peerdex-cache-XXXXXX";
        ASSERT_TRUE(::mkdtemp(tmpl));
        root_ = tmpl;
        dir_ = root_ + "/cache/peerdex/trees";
        file_ = root_ + "/shared.bin";
        write(pattern(3 << 19));
    }
    void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }
    void write(const std::string& data)
    {
        std::ofstream(file_, std::ios::binary | std::ios::trunc) << data;
    }
    HashResult tree(ContentTree& t, bool& cached)
    {
        std::string error;
        return tree_of(file_, dir_, t, cached, error);
    }
    std::string root_, dir_, file_;
};

TEST_F(Cache, SecondTimeComesFromTheCacheAndAgrees)
{
    ContentTree first, second;
    bool cached = true;
    ASSERT_EQ(tree(first, cached), HashResult::ok);
    EXPECT_FALSE(cached);
    ASSERT_EQ(tree(second, cached), HashResult::ok);
    EXPECT_TRUE(cached);
    EXPECT_EQ(second.root, first.root);
    EXPECT_EQ(second.leaves, first.leaves);
    struct stat st;
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(Cache, AChangedFileIsHashedAgainEvenWithItsTimesRestored)
{
    ContentTree before, after;
    bool cached = false;
    ASSERT_EQ(tree(before, cached), HashResult::ok);
    struct stat st;
    ASSERT_EQ(::stat(file_.c_str(), &st), 0);
    std::string data = pattern(3 << 19);
    data[1 << 20] ^= 1;  // same size
    write(data);
    const timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, file_.c_str(), times, 0), 0);  // as `touch -r` would
    ASSERT_EQ(tree(after, cached), HashResult::ok);
    EXPECT_FALSE(cached);  // its change time moved, which no one can set back
    EXPECT_NE(after.root, before.root);
    EXPECT_EQ(after.leaves[0], before.leaves[0]);
    EXPECT_NE(after.leaves[1], before.leaves[1]);
}

TEST_F(Cache, DamagedEntriesAreIgnored)
{
    ContentTree t;
    bool cached = false;
    ASSERT_EQ(tree(t, cached), HashResult::ok);
    struct stat st;
    ASSERT_EQ(::stat(file_.c_str(), &st), 0);
    const FileKey key = file_key(st);
    ContentTree loaded;
    ASSERT_TRUE(cache_load(dir_, key, loaded));
    // A flipped leaf hash no longer gives the stored root: the entry is not trusted.
    ContentTree bad = t;
    bad.leaves[0][0] ^= 1;
    std::string error;
    ASSERT_TRUE(cache_store(dir_, key, bad, error)) << error;
    EXPECT_FALSE(cache_load(dir_, key, loaded));
    ASSERT_EQ(tree(loaded, cached), HashResult::ok);
    EXPECT_FALSE(cached);
    EXPECT_EQ(loaded.root, t.root);
    EXPECT_TRUE(cache_load(dir_, key, loaded));  // and stored again, whole
    FileKey other = key;
    other.size += 1;  // another file's key finds nothing
    EXPECT_FALSE(cache_load(dir_, other, loaded));
}

TEST_F(Cache, NotAFileOrMissingIsAnError)
{
    ContentTree t;
    bool cached = false;
    std::string error;
    EXPECT_EQ(tree_of(root_, dir_, t, cached, error), HashResult::failed);
    EXPECT_EQ(error, "not a regular file");
    EXPECT_EQ(tree_of(root_ + "/missing", dir_, t, cached, error), HashResult::failed);
    EXPECT_FALSE(error.empty());
}

TEST_F(Cache, PruningDropsTheLeastRecentlyUsedFirst)
{
    ContentTree t;
    t.size = 100;
    t.leaves.resize(1);
    std::string error;
    // Three entries, used in the order 1, 3, 2 (a load renews an entry).
    for (std::uint64_t inode = 1; inode <= 3; ++inode) {
        FileKey key{9, inode, 100, 1, 1};
        ASSERT_TRUE(cache_store(dir_, key, t, error)) << error;
        const std::string path = dir_ + "/9-" + std::to_string(inode);
        const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(1000 + inode * 10), 0}};
        ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/9-1").c_str(), &st), 0);
    const auto entry = static_cast<std::uint64_t>(st.st_size);
    ContentTree loaded;
    t.root = TreeHasher().root(t.leaves);
    ASSERT_TRUE(cache_store(dir_, FileKey{9, 2, 100, 1, 1}, t, error));  // a valid tree this time
    const timespec old[2] = {{0, UTIME_OMIT}, {1005, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/9-2").c_str(), old, 0), 0);
    ASSERT_TRUE(cache_load(dir_, FileKey{9, 2, 100, 1, 1}, loaded));  // 2 is now the most recent
    EXPECT_EQ(prune_cache(dir_, 2 * entry), 1u);
    EXPECT_NE(::access((dir_ + "/9-1").c_str(), F_OK), 0);  // the oldest went
    EXPECT_EQ(::access((dir_ + "/9-2").c_str(), F_OK), 0);
    EXPECT_EQ(::access((dir_ + "/9-3").c_str(), F_OK), 0);
    EXPECT_EQ(prune_cache(dir_, 0), 2u);
    EXPECT_EQ(prune_cache(dir_, 0), 0u);
}

TEST(HashFile, ProgressMayCancel)
{
    char tmpl[] = "/tmp/peerdex-tree-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    const std::string data = pattern(3 << 20);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ContentTree tree;
    std::string error;
    std::vector<std::uint64_t> seen;
    EXPECT_EQ(hash_file(fd, data.size(), tree, error,
                        [&](std::uint64_t done) {
                            seen.push_back(done);
                            return seen.size() < 2;
                        }),
              HashResult::cancelled);
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{1 << 20, 2 << 20}));
    // A file shorter than it was said to be is an error, not a tree.
    EXPECT_EQ(hash_file(fd, data.size() + 10, tree, error), HashResult::failed);
    ::close(fd);
    ::unlink(tmpl);
}

}  // namespace
}  // namespace peerdex

namespace peerdex {
namespace {

// GET_TREE's reply as a peer sends it: code, size, id, count, then the leaves.
std::string tree_wire(std::uint64_t size, const std::vector<Digest>& leaves, const Digest& root)
{
    std::string out(1, '\0');
    for (const std::string& f : {std::to_string(size), content_id_text(root), std::to_string(leaves.size())})
        out += f + '\0';
    for (const Digest& d : leaves)
        out.append(reinterpret_cast<const char*>(d.data()), d.size());
    return out;
}

TreeReply::Status feed_all(TreeReply& r, const std::string& wire, std::size_t piece)
{
    TreeReply::Status st = TreeReply::Status::need_more;
    for (std::size_t at = 0; at < wire.size() && st == TreeReply::Status::need_more; at += piece) {
        const char* p = wire.data() + at;
        st = r.feed(p, p + std::min(piece, wire.size() - at));
    }
    return st == TreeReply::Status::need_more ? r.eof() : st;
}

TEST(TreeReply, AWholeConsistentTreeIsTakenInAnyPieces)
{
    TreeHasher h;
    const std::vector<Digest> leaves{h.leaf("a", 1), h.leaf("b", 1)};
    const std::string wire = tree_wire((1 << 20) + 1, leaves, h.root(leaves));
    for (std::size_t piece : {wire.size(), std::size_t{1}, std::size_t{7}}) {
        TreeReply r;
        ASSERT_EQ(feed_all(r, wire, piece), TreeReply::Status::done) << piece;
        EXPECT_EQ(r.tree().leaves, leaves);
        EXPECT_EQ(r.tree().size, (1u << 20) + 1);
    }
}

TEST(TreeReply, EveryWayATreeIsWrongHasItsFault)
{
    TreeHasher h;
    const std::vector<Digest> two{h.leaf("a", 1), h.leaf("b", 1)};
    const std::vector<Digest> one{h.leaf("x", 1)};
    struct Case {
        std::string wire;
        TreeReply::Fault fault;
    } cases[] = {
        {tree_wire((1 << 20) + 1, two, two[0]), TreeReply::Fault::wrong_leaves},
        {tree_wire(5, two, h.root(two)), TreeReply::Fault::bad_head},  // 5 bytes have one leaf
        {tree_wire(0, one, h.root(one)), TreeReply::Fault::not_empty},
        {tree_wire(5, one, h.root(one)).substr(0, 40), TreeReply::Fault::cut},
        {std::string(1, '\1'), TreeReply::Fault::refused},
        {"2", TreeReply::Fault::refused},  // a decimal code without its NUL, then the close
        {"hello", TreeReply::Fault::undecodable},
    };
    for (const Case& c : cases) {
        TreeReply r;
        EXPECT_EQ(feed_all(r, c.wire, 3), TreeReply::Status::failed) << static_cast<int>(c.fault);
        EXPECT_EQ(r.fault(), c.fault);
    }
}

}  // namespace
}  // namespace peerdex
