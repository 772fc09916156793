#include "wire.hh"

#include <cstring>

namespace peerdex {

FieldReader::Status FieldReader::next(const char*& p, const char* end)
{
    if (done_) {
        buf_.clear();
        done_ = false;
    }
    const std::size_t avail = static_cast<std::size_t>(end - p);
    const auto* nul = static_cast<const char*>(std::memchr(p, '\0', avail));
    const std::size_t take = nul ? static_cast<std::size_t>(nul - p) : avail;
    if (buf_.size() + take > cap_) {
        p = end;  // the connection is refused; the rest is not worth scanning
        return Status::too_long;
    }
    buf_.append(p, take);
    if (!nul) {
        p = end;
        return Status::need_more;
    }
    p = nul + 1;
    done_ = true;
    return Status::field;
}

std::size_t format_decimal(std::uint64_t n, char* out)
{
    char tmp[20];
    std::size_t len = 0;
    do {
        tmp[len++] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    for (std::size_t i = 0; i < len; ++i)
        out[i] = tmp[len - 1 - i];
    return len;
}

void Encoder::number(std::uint64_t n)
{
    char tmp[20];
    out_.append(tmp, format_decimal(n, tmp));
    out_.push_back('\0');
}

bool is_timestamp(std::string_view s)
{
    static constexpr char kShape[] = "99/99/9999 99:99:99";
    if (s.size() != kTimestampBytes)
        return false;
    for (std::size_t i = 0; i < kTimestampBytes; ++i) {
        const bool digit = s[i] >= '0' && s[i] <= '9';
        if (kShape[i] == '9' ? !digit : s[i] != kShape[i])
            return false;
    }
    return true;
}

bool has_control_bytes(std::string_view s)
{
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f)
            return true;
    return false;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max)
{
    if (s.empty() || s.size() > 20)
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (max - d) / 10)
            return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

std::optional<std::uint16_t> parse_port(std::string_view s)
{
    if (s.size() > 5)
        return std::nullopt;
    auto v = parse_decimal(s, 65535);
    if (!v || *v == 0)
        return std::nullopt;
    return static_cast<std::uint16_t>(*v);
}

}  // namespace peerdex
