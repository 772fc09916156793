// PUT_FILE storage (upload_file.hh): buffers that alternate, bytes past the announced size
// refused, the file named only when complete, stale temporaries removed at start.
#include "upload_file.hh"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "files.hh"

namespace peerdex {
namespace {

class UploadTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/peerdex-upload-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        path_ = tmpl;
        dir_ = ::open(tmpl, O_RDONLY | O_DIRECTORY);
        ASSERT_GE(dir_, 0);
    }
    void TearDown() override
    {
        ::close(dir_);
        std::string cmd = "rm -rf '" + path_ + "'";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
    }
    std::string read(const char* name)
    {
        const int fd = ::openat(dir_, name, O_RDONLY);
        if (fd < 0)
            return "<absent>";
        std::string out(1 << 20, '\0');
        const ssize_t n = ::read(fd, out.data(), out.size());
        ::close(fd);
        out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return out;
    }
    bool exists(const char* name) const { return ::faccessat(dir_, name, F_OK, 0) == 0; }
    // Feeds `text` through room()/received() as a socket read would.
    static void feed(UploadFile& u, const std::string& text)
    {
        uv_buf_t b = u.room();
        ASSERT_GE(b.len, text.size());
        text.copy(b.base, text.size());
        u.received(text.size());
    }

    std::string path_;
    int dir_ = -1;
};

TEST_F(UploadTest, BytesGoToTheFileInOrderAndItIsNamedOnlyWhenComplete)
{
    UploadFile u;
    const std::string early = "hello ";
    u.start(11, early.data(), early.size());
    EXPECT_EQ(u.received(), 6u);
    ASSERT_EQ(u.open(dir_), 0);
    ASSERT_TRUE(u.write_ready());
    u.begin_write();
    EXPECT_FALSE(u.write_ready());  // one write at a time
    feed(u, "wor");                 // the other buffer fills meanwhile
    ASSERT_EQ(u.write(), 0);
    u.write_done();
    EXPECT_FALSE(u.complete());
    feed(u, "ld and more");  // only 2 of these belong to the file
    EXPECT_EQ(u.received(), 11u);
    EXPECT_FALSE(u.wants_input());
    u.begin_write();
    ASSERT_EQ(u.write(), 0);
    u.write_done();
    ASSERT_TRUE(u.complete());
    EXPECT_FALSE(exists("target"));
    ASSERT_EQ(u.commit("target"), 0);
    EXPECT_EQ(read("target"), "hello world");
}

TEST_F(UploadTest, DiscardedUploadLeavesNothingAndKeepsTheOldFile)
{
    ASSERT_EQ(::close(::openat(dir_, "target", O_CREAT | O_WRONLY, 0644)), 0);
    {
        UploadFile u;
        u.start(100, "", 0);
        ASSERT_EQ(u.open(dir_), 0);
        feed(u, "partial");
        u.begin_write();
        ASSERT_EQ(u.write(), 0);
        u.write_done();
        u.discard();
    }
    EXPECT_EQ(read("target"), "");
    EXPECT_EQ(std::system(("test $(ls -A '" + path_ + "' | wc -l) -eq 1").c_str()), 0) << "a temporary was left";
}

TEST_F(UploadTest, LargerThanTheFreeSpaceIsRefusedBeforeAnyByte)
{
    UploadFile u;
    u.start(std::uint64_t{1} << 62, "", 0);
    EXPECT_EQ(u.open(dir_), ENOSPC);
}

TEST_F(UploadTest, StaleTemporariesAreRemovedFreshOnesKept)
{
    const std::string stale = std::string(kUploadTempPrefix) + "0123456789abcdef";
    const std::string fresh = std::string(kUploadTempPrefix) + "fedcba9876543210";
    for (const std::string& n : {stale, fresh, std::string("ordinary")})
        ASSERT_EQ(::close(::openat(dir_, n.c_str(), O_CREAT | O_WRONLY, 0644)), 0);
    const timespec old[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(dir_, stale.c_str(), old, 0), 0);
    ASSERT_EQ(::utimensat(dir_, "ordinary", old, 0), 0);
    EXPECT_EQ(UploadFile::remove_stale(dir_), 1);
    EXPECT_FALSE(exists(stale.c_str()));
    EXPECT_TRUE(exists(fresh.c_str()));  // perhaps an upload under way
    EXPECT_TRUE(exists("ordinary"));
}

}  // namespace
}  // namespace peerdex
