// A verified download's partial and its record (partial_file.hh): leaves checked as they
// complete, a bad leaf cut off, what a run kept reused by the next one, and the target name
// only on commit.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "partial_file.hh"

namespace peerdex {
namespace {

constexpr std::size_t kLeaf = 1 << 20;

std::string pattern(std::size_t n, unsigned seed)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 7 + seed) % 251);
    return s;
}

ContentTree tree_of_bytes(const std::string& data)
{
    ContentTree t;
    t.size = data.size();
    TreeHasher h;
    for (std::size_t at = 0; at < data.size() || t.leaves.empty(); at += kLeaf)
        t.leaves.push_back(h.leaf(data.data() + at, std::min(kLeaf, data.size() - at)));
    t.root = h.root(t.leaves);
    return t;
}

class PartialTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/peerdex-partial-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_path = tmpl;
        dir = ::open(tmpl, O_RDONLY | O_DIRECTORY);
        ASSERT_GE(dir, 0);
    }
    void TearDown() override
    {
        for (const auto& n : names())
            ::unlinkat(dir, n.c_str(), 0);
        ::close(dir);
        ::rmdir(dir_path.c_str());
    }
    std::vector<std::string> names() const
    {
        std::vector<std::string> out;
        DIR* d = ::opendir(dir_path.c_str());
        while (dirent* e = ::readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
                out.emplace_back(e->d_name);
        ::closedir(d);
        std::sort(out.begin(), out.end());
        return out;
    }
    std::string read(const std::string& name) const
    {
        std::ifstream f(dir_path + "/" + name, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }
    std::uint64_t size_of(const std::string& name) const
    {
        struct stat st {};
        return ::stat((dir_path + "/" + name).c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    }

    // Opens `p` for `tree`; its stream starts afresh.
    int open(PartialFile& p, const std::string& name, const ContentTree& tree, bool resume)
    {
        cursors.erase(&p);
        return p.open(dir, name, tree, resume);
    }
    // Writes in place as a download's stream does, from the first leaf `p` lacks, and marks
    // each leaf that matched.
    PartialFile::Write put(PartialFile& p, const char* data, std::size_t n)
    {
        auto& c = cursors[&p];
        if (!c) {
            c = std::make_unique<PartialFile::Cursor>();
            std::size_t first = 0;
            while (first < p.leaves() && p.has(first))
                ++first;
            c->pos = first * p.leaf_size();
        }
        const auto w = p.write_at(*c, data, n);
        for (const auto leaf : c->matched)
            p.mark(leaf);
        return w;
    }
    // Writes one whole leaf with a cursor of its own (another source).
    PartialFile::Write put_leaf(PartialFile& p, const std::string& data, std::uint64_t leaf)
    {
        PartialFile::Cursor c;
        c.pos = leaf * kLeaf;
        const auto w = p.write_at(c, data.data() + c.pos, static_cast<std::size_t>(std::min<std::uint64_t>(kLeaf, data.size() - c.pos)));
        for (const auto l : c.matched)
            p.mark(l);
        last_bad = c.bad_leaf;
        return w;
    }

    std::string dir_path;
    int dir = -1;
    std::map<PartialFile*, std::unique_ptr<PartialFile::Cursor>> cursors;
    std::uint64_t last_bad = 0;
};

TEST_F(PartialTest, WholeFileInPiecesThenCommit)
{
    const std::string data = pattern(3 * kLeaf + 12345, 1);
    const ContentTree tree = tree_of_bytes(data);
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    EXPECT_EQ(p.reused(), 0u);
    for (std::size_t at = 0; at < data.size(); at += 100000)
        ASSERT_EQ(put(p, data.data() + at, std::min<std::size_t>(100000, data.size() - at)),
                  PartialFile::Write::ok);
    EXPECT_TRUE(p.complete());
    EXPECT_EQ(names(), (std::vector<std::string>{".f.bin.peerdex-part", ".f.bin.peerdex-part.rec"}));
    ASSERT_EQ(p.commit(), 0);
    EXPECT_EQ(names(), std::vector<std::string>{"f.bin"});
    EXPECT_EQ(read("f.bin"), data);
}

TEST_F(PartialTest, BadLeafIsNotKeptAndNamed)
{
    const std::string data = pattern(4 * kLeaf, 2);
    const ContentTree tree = tree_of_bytes(data);
    std::string bad = data;
    bad[2 * kLeaf + 5] ^= 1;
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    ASSERT_EQ(put(p, bad.data(), 2 * kLeaf + 100), PartialFile::Write::ok);
    EXPECT_EQ(put(p, bad.data() + 2 * kLeaf + 100, kLeaf), PartialFile::Write::bad_leaf);
    EXPECT_EQ(cursors[&p]->bad_leaf, 2u);
    EXPECT_EQ(p.verified(), 2 * kLeaf);
    EXPECT_EQ(p.close_keep(), 2 * kLeaf);
    EXPECT_EQ(size_of(".f.bin.peerdex-part"), 2 * kLeaf);
    // The next run reuses the two good leaves and finishes.
    PartialFile again;
    ASSERT_EQ(open(again, "f.bin", tree, true), 0);
    EXPECT_EQ(again.reused(), 2 * kLeaf);
    ASSERT_EQ(put(again, data.data() + 2 * kLeaf, 2 * kLeaf), PartialFile::Write::ok);
    ASSERT_EQ(again.commit(), 0);
    EXPECT_EQ(read("f.bin"), data);
}

TEST_F(PartialTest, CrashBetweenCheckpointsKeepsTheWholeLeavesThatMatch)
{
    const std::string data = pattern(5 * kLeaf, 3);
    const ContentTree tree = tree_of_bytes(data);
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        // 3.5 leaves written, no checkpoint since the start: the record still says 0.
        ASSERT_EQ(put(p, data.data(), 3 * kLeaf + kLeaf / 2), PartialFile::Write::ok);
        // A crash: nothing more runs (the destructor only closes).
    }
    EXPECT_EQ(size_of(".f.bin.peerdex-part"), 3 * kLeaf + kLeaf / 2);
    PartialFile again;
    ASSERT_EQ(open(again, "f.bin", tree, true), 0);
    EXPECT_EQ(again.reused(), 3 * kLeaf);
    EXPECT_EQ(size_of(".f.bin.peerdex-part"), 3 * kLeaf);  // the torn leaf is fetched again
}

TEST_F(PartialTest, DamagedReusedLeafIsNotTrusted)
{
    const std::string data = pattern(3 * kLeaf, 4);
    const ContentTree tree = tree_of_bytes(data);
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        ASSERT_EQ(put(p, data.data(), 2 * kLeaf), PartialFile::Write::ok);
    }
    // Someone changes the second leaf on disk before the next run.
    const int fd = ::openat(dir, ".f.bin.peerdex-part", O_WRONLY);
    ASSERT_EQ(::pwrite(fd, "x", 1, kLeaf + 3), 1);
    ::close(fd);
    PartialFile again;
    ASSERT_EQ(open(again, "f.bin", tree, true), 0);
    EXPECT_EQ(again.reused(), kLeaf);
}

TEST_F(PartialTest, AnotherFileOrNoResumeStartsOver)
{
    const std::string data = pattern(2 * kLeaf, 5);
    const ContentTree tree = tree_of_bytes(data);
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        ASSERT_EQ(put(p, data.data(), kLeaf), PartialFile::Write::ok);
        EXPECT_EQ(p.close_keep(), kLeaf);
    }
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, false), 0);  // --no-resume
        EXPECT_EQ(p.reused(), 0u);
        ASSERT_EQ(put(p, data.data(), kLeaf), PartialFile::Write::ok);
        EXPECT_EQ(p.close_keep(), kLeaf);
    }
    const ContentTree other = tree_of_bytes(pattern(2 * kLeaf, 6));
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", other, true), 0);
    EXPECT_EQ(p.reused(), 0u);
    EXPECT_EQ(size_of(".f.bin.peerdex-part"), 0u);
}

TEST_F(PartialTest, ARecordClaimingMoreThanIsThereIsRewrittenAtOnce)
{
    const std::string data = pattern(3 * kLeaf, 8);
    const ContentTree tree = tree_of_bytes(data);
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        ASSERT_EQ(put(p, data.data(), 2 * kLeaf), PartialFile::Write::ok);
        EXPECT_EQ(p.close_keep(), 2 * kLeaf);  // the record says 2 leaves
    }
    ASSERT_EQ(::truncate((dir_path + "/.f.bin.peerdex-part").c_str(), kLeaf / 2), 0);  // shorter than that
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        EXPECT_EQ(p.reused(), 0u);
        // A crash before any checkpoint of this run; then the partial holds 2 leaves of junk.
    }
    const std::string junk(2 * kLeaf, 'j');
    std::ofstream(dir_path + "/.f.bin.peerdex-part", std::ios::binary | std::ios::trunc) << junk;
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    EXPECT_EQ(p.reused(), 0u) << "the old record's 2 leaves must not be trusted";
}

TEST_F(PartialTest, NothingVerifiedLeavesNothing)
{
    const std::string data = pattern(2 * kLeaf, 7);
    const ContentTree tree = tree_of_bytes(data);
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    ASSERT_EQ(put(p, data.data(), kLeaf / 2), PartialFile::Write::ok);
    EXPECT_EQ(p.close_keep(), 0u);
    EXPECT_TRUE(names().empty());
}

TEST_F(PartialTest, EmptyFileCommitsAtOnce)
{
    const ContentTree tree = tree_of_bytes("");
    PartialFile p;
    ASSERT_EQ(open(p, "e", tree, true), 0);
    EXPECT_TRUE(p.complete());
    ASSERT_EQ(p.commit(), 0);
    EXPECT_EQ(names(), std::vector<std::string>{"e"});
}

TEST_F(PartialTest, LeavesFromSeveralSourcesInAnyOrder)
{
    const std::string data = pattern(5 * kLeaf + 777, 9);
    const ContentTree tree = tree_of_bytes(data);
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    ASSERT_EQ(p.leaves(), 6u);
    ASSERT_EQ(put_leaf(p, data, 5), PartialFile::Write::ok);  // the short last leaf first
    ASSERT_EQ(put_leaf(p, data, 2), PartialFile::Write::ok);
    EXPECT_EQ(p.verified(), kLeaf + 777);
    EXPECT_TRUE(p.has(2) && p.has(5) && !p.has(0));
    std::string bad = data;
    bad[3 * kLeaf] ^= 0x40;
    EXPECT_EQ(put_leaf(p, bad, 3), PartialFile::Write::bad_leaf);
    EXPECT_EQ(last_bad, 3u);
    EXPECT_FALSE(p.has(3));
    EXPECT_FALSE(p.complete());
    for (const std::uint64_t leaf : {4, 0, 3, 1})
        ASSERT_EQ(put_leaf(p, data, leaf), PartialFile::Write::ok);
    EXPECT_TRUE(p.complete());
    ASSERT_EQ(p.commit(), 0);
    EXPECT_EQ(read("f.bin"), data);
}

TEST_F(PartialTest, TheNextRunKeepsEveryRecordedRunOfLeaves)
{
    const std::string data = pattern(6 * kLeaf, 10);
    const ContentTree tree = tree_of_bytes(data);
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        for (const std::uint64_t leaf : {1, 2, 4})
            ASSERT_EQ(put_leaf(p, data, leaf), PartialFile::Write::ok);
        EXPECT_EQ(p.close_keep(), 3 * kLeaf);
    }
    EXPECT_EQ(read(".f.bin.peerdex-part.rec"), "peerdex-part 2\n" + content_id_text(tree.root) + "\n" +
                                                   std::to_string(6 * kLeaf) + "\n1 2\n4 1\n");
    EXPECT_EQ(size_of(".f.bin.peerdex-part"), 5 * kLeaf);  // cut after the last verified leaf
    {
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        EXPECT_EQ(p.reused(), 3 * kLeaf);
        EXPECT_TRUE(p.has(1) && p.has(2) && p.has(4));
        EXPECT_FALSE(p.has(0) || p.has(3) || p.has(5));
        // A crash after leaf 5 was written, before any save: it is found again by its hash,
        // and the holes before it are not taken for leaves.
        ASSERT_EQ(put_leaf(p, data, 5), PartialFile::Write::ok);
    }
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    EXPECT_EQ(p.reused(), 4 * kLeaf);
    for (const std::uint64_t leaf : {0, 3})
        ASSERT_EQ(put_leaf(p, data, leaf), PartialFile::Write::ok);
    ASSERT_EQ(p.commit(), 0);
    EXPECT_EQ(read("f.bin"), data);
}

TEST_F(PartialTest, ARecordOfTheEarlierFormatIsStillRead)
{
    const std::string data = pattern(3 * kLeaf, 11);
    const ContentTree tree = tree_of_bytes(data);
    std::ofstream(dir_path + "/.f.bin.peerdex-part", std::ios::binary) << data.substr(0, 2 * kLeaf);
    std::ofstream(dir_path + "/.f.bin.peerdex-part.rec", std::ios::binary)
        << "peerdex-part 1\n" << content_id_text(tree.root) << "\n" << 3 * kLeaf << "\n" << 2 * kLeaf << "\n";
    PartialFile p;
    ASSERT_EQ(open(p, "f.bin", tree, true), 0);
    EXPECT_EQ(p.reused(), 2 * kLeaf);
    EXPECT_TRUE(p.has(0) && p.has(1));
}

TEST_F(PartialTest, AMalformedRecordIsNotTrusted)
{
    const std::string data = pattern(3 * kLeaf, 12);
    const ContentTree tree = tree_of_bytes(data);
    const std::string junk(3 * kLeaf, 'j');
    for (const char* runs : {"0 4\n", "3 1\n", "0 0\n", "1\n", "0 99999999999999999999999\n", "x 1\n"}) {
        std::ofstream(dir_path + "/.f.bin.peerdex-part", std::ios::binary | std::ios::trunc) << junk;
        std::ofstream(dir_path + "/.f.bin.peerdex-part.rec", std::ios::binary | std::ios::trunc)
            << "peerdex-part 2\n" << content_id_text(tree.root) << "\n" << 3 * kLeaf << "\n" << runs;
        PartialFile p;
        ASSERT_EQ(open(p, "f.bin", tree, true), 0);
        EXPECT_EQ(p.reused(), 0u) << runs;
        p.discard();
    }
}

TEST(PartialNames, HiddenBesideTheTargetAndWithinNameMax)
{
    EXPECT_EQ(PartialFile::part_name("f.bin"), ".f.bin.peerdex-part");
    EXPECT_EQ(PartialFile::record_name("f.bin"), ".f.bin.peerdex-part.rec");
    const std::string longest(255, 'a');
    EXPECT_LE(PartialFile::record_name(longest).size(), 255u);
    EXPECT_EQ(PartialFile::record_name(longest)[0], '.');
}

}  // namespace
}  // namespace peerdex
