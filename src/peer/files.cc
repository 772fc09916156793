#include "files.hh"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

namespace peerdex {

bool write_all(int fd, const void* data, std::size_t n)
{
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool pwrite_all(int fd, const void* data, std::size_t n, std::uint64_t at)
{
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        at += static_cast<std::uint64_t>(w);
    }
    return true;
}

bool valid_file_name(std::string_view name)
{
    if (name.empty() || name.size() > 255 || name == "." || name == "..")
        return false;
    if (name.substr(0, kUploadTempPrefix.size()) == kUploadTempPrefix)
        return false;
    return std::none_of(name.begin(), name.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c == '/' || c < 0x20 || c == 0x7f;
    });
}

std::optional<std::uint64_t> parse_size(std::string_view text)
{
    std::size_t i = 0;
    std::uint64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        const auto d = static_cast<std::uint64_t>(text[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return std::nullopt;
        n = n * 10 + d;
        ++i;
    }
    if (i == 0)
        return std::nullopt;
    std::string unit;
    for (char c : text.substr(i))
        unit += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    int shift = 0;
    if (unit.empty() || unit == "B")
        shift = 0;
    else if (unit == "K" || unit == "KIB")
        shift = 10;
    else if (unit == "M" || unit == "MIB")
        shift = 20;
    else if (unit == "G" || unit == "GIB")
        shift = 30;
    else if (unit == "T" || unit == "TIB")
        shift = 40;
    else
        return std::nullopt;
    if (shift && n > (UINT64_MAX >> shift))
        return std::nullopt;
    return n << shift;
}

std::string human_size(double bytes)
{
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

std::string format_listing(const std::vector<FileEntry>& files, bool raw_bytes)
{
    std::vector<std::string> sizes;
    std::size_t width = 0;
    for (const auto& f : files) {
        sizes.push_back(raw_bytes ? std::to_string(f.size) : human_size(static_cast<double>(f.size)));
        width = std::max(width, sizes.back().size());
    }
    std::string out;
    for (std::size_t i = 0; i < files.size(); ++i) {
        const std::time_t t = static_cast<std::time_t>(files[i].mtime);
        std::tm tm{};
        char date[32] = "unknown date    ";
        if (localtime_r(&t, &tm))
            std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", &tm);
        out += date;
        out += "  ";
        out.append(width - sizes[i].size(), ' ');
        out += sizes[i];
        out += "  ";
        for (char c : files[i].name) {
            const auto u = static_cast<unsigned char>(c);
            out += u < 0x20 || u == 0x7f ? '?' : c;
        }
        out += '\n';
    }
    return out;
}

std::string progress_line(std::string_view name, std::uint64_t done, std::uint64_t total, std::uint64_t elapsed_ms)
{
    const double secs = static_cast<double>(elapsed_ms) / 1000.0;
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const double frac = total ? static_cast<double>(std::min(done, total)) / static_cast<double>(total) : 1.0;
    constexpr int kWidth = 30;
    std::string bar(static_cast<std::size_t>(frac * kWidth), '#');
    bar.resize(kWidth, '-');
    char tail[160];
    if (rate > 0) {
        const double eta = static_cast<double>(total > done ? total - done : 0) / rate;
        std::snprintf(tail, sizeof tail, "%3.0f%% %s/%s %s/s ETA %.0fs", frac * 100,
                      human_size(static_cast<double>(done)).c_str(), human_size(static_cast<double>(total)).c_str(),
                      human_size(rate).c_str(), eta);
    } else {
        std::snprintf(tail, sizeof tail, "%3.0f%% %s/%s", frac * 100, human_size(static_cast<double>(done)).c_str(),
                      human_size(static_cast<double>(total)).c_str());
    }
    return std::string(name) + " [" + bar + "] " + tail;
}

std::string base_name(std::string_view path)
{
    while (path.size() > 1 && path.back() == '/')
        path.remove_suffix(1);
    const auto slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string progress_redraw(std::string_view line, bool last)
{
    std::string out = "\r";
    out += line;
    out += "\x1b[K";
    if (last)
        out += '\n';
    return out;
}

std::string format_stats(const PeerStats& s, std::uint64_t uptime_s)
{
    using u = unsigned long long;
    char buf[1536];
    std::snprintf(buf, sizeof buf,
                  "uptime: %llu s\n"
                  "connections: %llu (open %llu)\n"
                  "requests: GET_FILE %llu, LIST_FILES %llu, PUT_FILE %llu, GET_RANGE %llu, GET_TREE %llu, "
                  "other %llu\n"
                  "refused: %llu\n"
                  "abandoned: %llu\n"
                  "listings built: %llu\n"
                  "trees sent: %llu\n"
                  "bytes sent: %llu (%s)\n"
                  "bytes received: %llu (%s)\n"
                  "files downloaded: %llu\n"
                  "ranges sent: %llu\n"
                  "upload slots: %llu in use of %s, %llu waiting\n"
                  "upload rate: %s, %llu waiting\n"
                  "files uploaded: %llu\n",
                  static_cast<u>(uptime_s), static_cast<u>(s.connections), static_cast<u>(s.open),
                  static_cast<u>(s.get_file), static_cast<u>(s.list_files), static_cast<u>(s.put_file),
                  static_cast<u>(s.get_range), static_cast<u>(s.get_tree), static_cast<u>(s.other),
                  static_cast<u>(s.refused), static_cast<u>(s.abandoned), static_cast<u>(s.listings),
                  static_cast<u>(s.trees), static_cast<u>(s.bytes_sent),
                  human_size(static_cast<double>(s.bytes_sent)).c_str(), static_cast<u>(s.bytes_received),
                  human_size(static_cast<double>(s.bytes_received)).c_str(), static_cast<u>(s.files_downloaded),
                  static_cast<u>(s.ranges_sent), static_cast<u>(s.uploads),
                  s.upload_slots ? std::to_string(s.upload_slots).c_str() : "unlimited",
                  static_cast<u>(s.upload_queue),
                  s.upload_rate ? (human_size(static_cast<double>(s.upload_rate)) + "/s").c_str() : "unlimited",
                  static_cast<u>(s.rate_waiting), static_cast<u>(s.files_uploaded));
    return buf;
}

}  // namespace peerdex
