#include "upload_file.hh"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "files.hh"

namespace peerdex {

namespace {
constexpr std::uint64_t kWritebackBytes = 8 << 20;  // writeback started every this many bytes
constexpr time_t kStaleSeconds = 600;               // far beyond the 30 s stall timeout
}  // namespace

void UploadFile::start(std::uint64_t size, const char* body, std::size_t n)
{
    size_ = size;
    filling_ = new_buffer(kBufferBytes);
    draining_ = new_buffer(kBufferBytes);
    // At most one read's worth came with the request, less than a buffer.
    filled_ = static_cast<std::size_t>(std::min<std::uint64_t>(std::min(n, kBufferBytes), size_));
    std::memcpy(filling_.get(), body, filled_);
    received_ = filled_;
}

uv_buf_t UploadFile::room()
{
    return uv_buf_init(filling_.get() + filled_, static_cast<unsigned>(kBufferBytes - filled_));
}

void UploadFile::received(std::size_t n)
{
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - received_));
    filled_ += take;
    received_ += take;
}

void UploadFile::begin_write()
{
    std::swap(filling_, draining_);
    in_flight_ = std::exchange(filled_, 0);
    writing_ = true;
}

int UploadFile::open(int dir_fd)
{
    struct statvfs vfs {};
    if (::fstatvfs(dir_fd, &vfs) == 0 &&
        static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize) < size_)
        return ENOSPC;  // refused before any byte is stored
    return file_.open(dir_fd, kUploadTempPrefix);  // nothing remains of a cut upload
}

int UploadFile::write()
{
    const char* p = draining_.get();
    std::size_t left = in_flight_;
    auto at = static_cast<off_t>(written_);
    while (left > 0) {
        const ssize_t w = ::pwrite(file_.fd(), p, left, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : ENOSPC;
        p += w;
        left -= static_cast<std::size_t>(w);
        at += w;
    }
    // Start writing back what came so far, so that the sync before the rename has little
    // left to wait for.
    const std::uint64_t end = written_ + in_flight_;
    if (end - synced_ >= kWritebackBytes) {
        ::sync_file_range(file_.fd(), static_cast<off_t>(synced_), static_cast<off_t>(end - synced_),
                          SYNC_FILE_RANGE_WRITE);
        synced_ = end;
    }
    return 0;
}

void UploadFile::discard()
{
    file_.discard();
    filling_.reset();
    draining_.reset();
}

int UploadFile::remove_stale(int dir_fd)
{
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) {
        if (fd >= 0)
            ::close(fd);
        return 0;
    }
    int removed = 0;
    const time_t now = ::time(nullptr);
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        struct stat st {};
        if (name.substr(0, kUploadTempPrefix.size()) == kUploadTempPrefix &&
            ::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime >= kStaleSeconds && ::unlinkat(dir_fd, e->d_name, 0) == 0)
            ++removed;
    }
    ::closedir(d);
    return removed;
}

}  // namespace peerdex
