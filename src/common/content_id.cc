#include "content_id.hh"

namespace peerdex {

std::uint64_t leaf_size_for(std::uint64_t size)
{
    std::uint64_t leaf = kMinLeafSize;
    while (size / leaf + (size % leaf != 0) > kMaxLeaves)
        leaf *= 2;
    return leaf;
}

std::size_t leaf_count(std::uint64_t size)
{
    const std::uint64_t leaf = leaf_size_for(size);
    return static_cast<std::size_t>(size == 0 ? 1 : size / leaf + (size % leaf != 0));  // <= kMaxLeaves
}

std::string content_id_text(const Digest& root)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text(kContentIdPrefix);
    for (const std::uint8_t b : root) {
        text.push_back(kHex[b >> 4]);
        text.push_back(kHex[b & 15]);
    }
    return text;
}

bool parse_content_id(std::string_view text, Digest& root)
{
    if (text.size() != kContentIdLength || text.substr(0, kContentIdPrefix.size()) != kContentIdPrefix)
        return false;
    const auto nibble = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    text.remove_prefix(kContentIdPrefix.size());
    for (std::size_t i = 0; i < root.size(); ++i) {
        const int hi = nibble(text[2 * i]);
        const int lo = nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        root[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return true;
}

}  // namespace peerdex
