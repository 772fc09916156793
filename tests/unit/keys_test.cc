#include "keys.hh"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "protocol.hh"

namespace peerdex {
namespace {

class KeysTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/peerdex-keys-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        base_ = tmpl;
    }
    void TearDown() override { std::system(("rm -rf '" + base_ + "'").c_str()); }
    std::string base_;
};

TEST_F(KeysTest, MadeOnceReadBackOwnerOnlyAndForgotten)
{
    KeyFiles keys("127.0.0.1:4000", base_);
    std::string error;
    EXPECT_EQ(keys.get("alice", error), "");
    EXPECT_EQ(error, "");  // none yet is no error
    const std::string key = keys.create("alice", error);
    ASSERT_EQ(error, "");
    EXPECT_TRUE(field_valid(FieldKind::key, key)) << key;
    EXPECT_EQ(keys.get("alice", error), key);
    EXPECT_NE(keys.create("bob", error), key);  // random, not derived from anything
    EXPECT_EQ(keys.path("alice"), base_ + "/peerdex/keys/127.0.0.1:4000/alice");
    struct stat st {};
    ASSERT_EQ(::stat(keys.path("alice").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((base_ + "/peerdex/keys/127.0.0.1:4000").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    // One file per tracker: another tracker has no key for alice.
    EXPECT_EQ(KeyFiles("127.0.0.1:4001", base_).get("alice", error), "");
    keys.forget("alice");
    EXPECT_EQ(keys.get("alice", error), "");
    EXPECT_EQ(error, "");
}

TEST_F(KeysTest, NamesThatAreNotFileNamesAreEncoded)
{
    KeyFiles keys("[::1]:4000", base_);
    std::string error;
    for (const std::string user : {"../evil", ".hidden", "a/b", "ünï"}) {
        const std::string key = keys.create(user, error);
        ASSERT_EQ(error, "") << user;
        EXPECT_EQ(keys.get(user, error), key) << user;
        const std::string name = keys.path(user).substr(keys.path(user).rfind('/') + 1);
        EXPECT_EQ(name[0], '%') << user;
    }
}

TEST_F(KeysTest, AFileWithoutAKeyIsAnError)
{
    KeyFiles keys("t", base_);
    std::string error;
    ASSERT_NE(keys.create("alice", error), "");
    std::ofstream(keys.path("alice")) << "not a key\n";
    EXPECT_EQ(keys.get("alice", error), "");
    EXPECT_NE(error.find("holds no key"), std::string::npos) << error;
}

}  // namespace
}  // namespace peerdex
