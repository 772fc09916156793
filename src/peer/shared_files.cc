#include "shared_files.hh"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace peerdex {

namespace {
constexpr std::size_t kMaxListed = 100000;  // LIST_FILES entries (a reply of at most ~30 MB)

// O_NONBLOCK: opening a FIFO must not wait for a writer.
int open_regular(int at, const std::string& name, int flags, std::uint64_t& size)
{
    const int fd = ::openat(at, name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags);
    if (fd < 0)
        return -errno;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return -ENOENT;
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return fd;
}

void add_regular(std::vector<FileEntry>& files, int at, const std::string& name, int flags)
{
    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, flags) == 0 && S_ISREG(st.st_mode))
        files.push_back({name, static_cast<std::uint64_t>(st.st_size), st.st_mtime});
}

void sort_by_name(std::vector<FileEntry>& files)
{
    std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; });
}
}  // namespace

const char* PublishedFiles::check(const std::string& name) const
{
    return contains(name) ? "" : "not published";
}

int PublishedFiles::open(const std::string& name, std::uint64_t& size) const
{
    return open_regular(AT_FDCWD, name, 0, size);
}

std::function<std::vector<FileEntry>(int& err)> PublishedFiles::lister() const
{
    return [paths = std::vector<std::string>(paths_.begin(), paths_.end())](int&) {
        std::vector<FileEntry> files;
        for (const auto& p : paths)
            add_regular(files, AT_FDCWD, p, 0);
        sort_by_name(files);
        return files;
    };
}

const char* SharedDirectory::check(const std::string& name) const
{
    return valid_file_name(name) ? "" : "not a plain file name";
}

int SharedDirectory::open(const std::string& name, std::uint64_t& size) const
{
    // One component: O_NOFOLLOW covers the whole path, a symlink does not lead out.
    return open_regular(dir_, name, O_NOFOLLOW, size);
}

std::function<std::vector<FileEntry>(int& err)> SharedDirectory::lister() const
{
    return [dir = dir_](int& err) {
        std::vector<FileEntry> files;
        // A descriptor of its own: readdir's position is not shared with anyone.
        const int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
        if (!d) {
            err = errno;
            if (fd >= 0)
                ::close(fd);
            return files;
        }
        while (const dirent* e = ::readdir(d)) {
            if (files.size() >= kMaxListed)
                break;
            if (valid_file_name(e->d_name))
                add_regular(files, dir, e->d_name, AT_SYMLINK_NOFOLLOW);
        }
        ::closedir(d);
        sort_by_name(files);
        return files;
    };
}

}  // namespace peerdex
