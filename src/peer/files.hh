// Pure pieces of the standalone file server and its one-shot commands (peerdex-protocol(7),
// FILE SERVER): the name rule, sizes as people write and read them, the `ls` table, the
// progress line, and the server's statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peerdex {

// A buffer for file data, not zeroed: every byte of it used was first read into it (from
// a file or a socket), so zeroing would only cost a pass over it per transfer.
inline std::unique_ptr<char[]> new_buffer(std::size_t bytes)
{
    return std::unique_ptr<char[]>(new char[bytes]);
}

// Uploads are written under this prefix until complete; such names are neither listed
// nor served nor accepted.
inline constexpr std::string_view kUploadTempPrefix = ".peerdex-upload-";

// FILE SERVER: one path component, not empty, not "." or "..", no '/', no NUL or control
// bytes (0x01-0x1f, 0x7f), at most 255 bytes; and not one of our temporary names.
bool valid_file_name(std::string_view name);

// The last component of a path, trailing slashes ignored: "/a/b/" → "b", "/" → "".
std::string base_name(std::string_view path);

// "1536" → 1536, "10K"/"10KiB" → 10240, "2M", "1G", "1T" (binary units, case-insensitive).
std::optional<std::uint64_t> parse_size(std::string_view text);

// 0 → "0 B", 1536 → "1.5 KiB", 3*2^30 → "3.0 GiB".
std::string human_size(double bytes);

struct FileEntry {
    std::string name;
    std::uint64_t size = 0;
    std::int64_t mtime = 0;  // Unix seconds
};

// One line per file: "YYYY-MM-DD HH:MM  SIZE  NAME" in the local time zone, sizes in
// human units (or raw bytes), aligned; control bytes of names are shown as '?'.
std::string format_listing(const std::vector<FileEntry>& files, bool raw_bytes);

// "NAME [#####-----]  50% 1.0 MiB/2.0 MiB 10.0 MiB/s ETA 0s"
std::string progress_line(std::string_view name, std::uint64_t done, std::uint64_t total, std::uint64_t elapsed_ms);

// What a terminal is sent to replace the progress line in place: carriage return, the
// line, erase to the end of the line (a shorter line leaves nothing of a longer one),
// and a newline after the last one.
std::string progress_redraw(std::string_view line, bool last);

struct PeerStats {
    std::uint64_t connections = 0;  // accepted since the start
    std::uint64_t open = 0;         // open now
    std::uint64_t get_file = 0, list_files = 0, put_file = 0, other = 0;  // requests by kind
    std::uint64_t get_range = 0, get_tree = 0;                            // (FILE RANGES)
    std::uint64_t refused = 0;      // requests answered with a code other than 00
    std::uint64_t abandoned = 0;    // requests dropped unanswered: the client left first
    std::uint64_t listings = 0;     // LIST_FILES replies built
    std::uint64_t bytes_sent = 0, bytes_received = 0;
    std::uint64_t files_downloaded = 0;  // GET_FILE transfers sent in full
    std::uint64_t files_uploaded = 0;    // PUT_FILE stored and renamed into place
    std::uint64_t ranges_sent = 0;       // GET_RANGE transfers sent in full
    std::uint64_t trees = 0;             // GET_TREE replies sent
    // --upload-slots and --upload-rate: the limits (0: none) and what they hold back now.
    std::uint64_t upload_slots = 0, uploads = 0, upload_queue = 0;
    std::uint64_t upload_rate = 0, rate_waiting = 0;
};

// Blocking writes of all `n` bytes (EINTR retried): false with errno set when they fail (a
// pwrite that writes nothing: ENOSPC). For the thread pool, never the loop.
bool write_all(int fd, const void* data, std::size_t n);
bool pwrite_all(int fd, const void* data, std::size_t n, std::uint64_t at);

// The statistics block, one "key: value" line each, for `s`, SIGUSR1 and STATS.
std::string format_stats(const PeerStats& s, std::uint64_t uptime_s);

}  // namespace peerdex
