#include "pending_file.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace peerdex {

namespace {
constexpr int kNameTries = 8;

// Pool threads call this at once: one generator each.
std::string random_suffix()
{
    thread_local std::mt19937_64 rng(std::random_device{}());
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}
}  // namespace

int PendingFile::open(int dir_fd, std::string_view temp_prefix)
{
    discard();
    dir_ = dir_fd;
    prefix_ = temp_prefix;
    // 0666: the usual permissions, less the umask, like any new file.
    fd_ = ::openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        for (int i = 0; i < kNameTries && fd_ < 0; ++i) {
            temp_ = prefix_ + random_suffix();
            fd_ = ::openat(dir_fd, temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            if (fd_ < 0 && errno != EEXIST)
                break;
        }
        if (fd_ < 0)
            temp_.clear();
    }
    return fd_ < 0 ? errno : 0;
}

int PendingFile::temp_name(std::string& out)
{
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    for (int i = 0; i < kNameTries; ++i) {
        const std::string t = prefix_ + random_suffix();
        // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc works for everyone else.
        if (::linkat(fd_, "", dir_, t.c_str(), AT_EMPTY_PATH) == 0 ||
            ::linkat(AT_FDCWD, proc.c_str(), dir_, t.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            out = t;
            return 0;
        }
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

int PendingFile::commit(const std::string& name)
{
    if (fd_ < 0)
        return EBADF;
    if (::fsync(fd_) != 0)
        return errno;
    if (temp_.empty())
        if (const int err = temp_name(temp_); err != 0)
            return err;
    if (::renameat(dir_, temp_.c_str(), dir_, name.c_str()) != 0)
        return errno;
    temp_.clear();
    ::fsync(dir_);  // the new name survives a power cut
    ::close(fd_);
    fd_ = -1;
    return 0;
}

void PendingFile::discard()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
    if (!temp_.empty() && dir_ >= 0)
        ::unlinkat(dir_, temp_.c_str(), 0);
    temp_.clear();
}

}  // namespace peerdex
