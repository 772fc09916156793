#include "keys.hh"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "protocol.hh"

namespace peerdex {

namespace {

constexpr std::size_t kKeyBytes = kKeyHexBytes / 2;

// Lowercase hexadecimal of the bytes of `s`, appended to `out`.
void append_hex(std::string& out, std::string_view s)
{
    static const char* const hex = "0123456789abcdef";
    for (unsigned char c : s) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
}

// A file name for anything: names made of letters, digits and . _ - : [ ] (not starting with
// '.') as they are (a user name, "127.0.0.1:4000", "[::1]:4000"); the others as "%" and the
// hexadecimal of their bytes.
std::string file_name(const std::string& s)
{
    bool plain = !s.empty() && s[0] != '.';
    for (unsigned char c : s)
        plain = plain && (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '[' || c == ']');
    if (plain)
        return s;
    std::string out = "%";
    append_hex(out, s);
    return out;
}

// mkdir -p with mode 0700 for what it creates.
bool make_dirs(const std::string& dir, std::string& error)
{
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i != dir.size() && dir[i] != '/')
            continue;
        const std::string part = dir.substr(0, i);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
            error = "cannot create " + part + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

}  // namespace

KeyFiles::KeyFiles(const std::string& tracker, std::string base)
{
    if (base.empty()) {
        const char* xdg = std::getenv("XDG_CONFIG_HOME");
        const char* home = std::getenv("HOME");
        base = xdg && *xdg == '/' ? xdg : std::string(home && *home ? home : ".") + "/.config";
    }
    dir_ = base + "/peerdex/keys/" + file_name(tracker);
}

std::string KeyFiles::path(const std::string& user) const
{
    return dir_ + "/" + file_name(user);
}

std::string KeyFiles::get(const std::string& user, std::string& error) const
{
    const std::string p = path(user);
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            error = "cannot read the key " + p + ": " + std::strerror(errno);
        return {};
    }
    char buf[kKeyHexBytes + 2];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string key(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (!key.empty() && key.back() == '\n')
        key.pop_back();
    if (!field_valid(FieldKind::key, key)) {
        error = "the key file " + p + " holds no key (64 hexadecimal digits)";
        return {};
    }
    return key;
}

std::string KeyFiles::create(const std::string& user, std::string& error)
{
    unsigned char raw[kKeyBytes];
    for (std::size_t got = 0; got < sizeof raw;) {
        const ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno != EINTR) {
            error = std::string("cannot draw a random key: ") + std::strerror(errno);
            return {};
        }
        got += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    std::string key;
    append_hex(key, std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
    if (!make_dirs(dir_, error))
        return {};
    const std::string final_path = path(user);
    const std::string tmp = final_path + ".new";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        error = "cannot write the key " + tmp + ": " + std::strerror(errno);
        return {};
    }
    const std::string text = key + "\n";
    const bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
        error = "cannot write the key " + final_path + ": " + std::strerror(ok ? errno : saved);
        ::unlink(tmp.c_str());
        return {};
    }
    return key;
}

void KeyFiles::forget(const std::string& user)
{
    ::unlink(path(user).c_str());
}

}  // namespace peerdex
