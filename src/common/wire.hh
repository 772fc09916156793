// Wire codec of the peerdex protocols (peerdex-protocol(7): TRACKER REQUESTS, SESSIONS,
// PEER TRANSFERS): NUL-terminated fields read incrementally with a cap per field, and an
// appending encoder. No I/O here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace peerdex {

// Longest field any peerdex protocol accepts (user names, paths, descriptions).
inline constexpr std::size_t kMaxFieldBytes = 255;
// A timestamp is exactly DD/MM/YYYY HH:MM:SS.
inline constexpr std::size_t kTimestampBytes = 19;

// Reads one NUL-terminated field at a time from a byte stream that may arrive in
// arbitrary pieces. A field longer than the cap is reported as soon as the cap is
// exceeded, without buffering the rest.
class FieldReader {
public:
    enum class Status { need_more, field, too_long };

    explicit FieldReader(std::size_t cap = kMaxFieldBytes) : cap_(cap) { buf_.reserve(cap); }

    // Consumes bytes from [p, end) up to and including the first NUL and advances p.
    // On `field`, field() holds the bytes before the NUL until the next call.
    Status next(const char*& p, const char* end);

    std::string_view field() const { return buf_; }
    // Changes the cap for the next field; drops any partial field.
    void start(std::size_t cap) { cap_ = cap; buf_.clear(); done_ = false; }
    // True when bytes of an unterminated field are buffered.
    bool partial() const { return !done_ && !buf_.empty(); }

private:
    std::string buf_;
    std::size_t cap_;
    bool done_ = false;
};

// Appends protocol elements to a reusable buffer.
class Encoder {
public:
    explicit Encoder(std::string& out) : out_(out) {}
    void code(std::uint8_t c) { out_.push_back(static_cast<char>(c)); }
    void field(std::string_view s) { out_.append(s); out_.push_back('\0'); }
    void number(std::uint64_t n);
    std::size_t size() const { return out_.size(); }

private:
    std::string& out_;
};

// The shape DD/MM/YYYY HH:MM:SS, digits and separators only. Ranges are not
// checked: peerdex-protocol(7) tells a timestamp from a name by its shape.
bool is_timestamp(std::string_view s);

// True when s has a byte below 0x20 or 0x7F.
bool has_control_bytes(std::string_view s);

// 1..65535 in plain decimal (digits only, at most 5 of them).
std::optional<std::uint16_t> parse_port(std::string_view s);

// Unsigned decimal without sign or spaces, no overflow past `max`.
std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max);

// Writes the decimal form of n at out (at least 20 bytes) and returns its length.
std::size_t format_decimal(std::uint64_t n, char* out);

}  // namespace peerdex
