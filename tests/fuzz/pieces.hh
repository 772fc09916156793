// Fuzz-target helpers: the input's first byte chooses how the rest is cut into pieces, so
// every input is also fed to a decoder in arbitrary splits; a decoder must reach the same
// result whatever the pieces (the network splits and batches bytes as it likes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

namespace peerdex::fuzz {

// Piece sizes from a small generator seeded by one byte: runs of 1-byte pieces, small ones
// and large ones all occur.
class Pieces {
public:
    explicit Pieces(std::uint8_t seed) : state_(seed * 2654435761u + 1) {}
    std::size_t next(std::size_t left)
    {
        state_ = state_ * 1103515245u + 12345u;
        const std::uint32_t r = state_ >> 8;
        const std::size_t n = (r & 3) == 0 ? 1 : (r & 3) == 1 ? 1 + (r >> 2) % 8 : 1 + (r >> 2) % 512;
        return n < left ? n : left;
    }

private:
    std::uint32_t state_;
};

// An input: the first byte for choices, the rest as the bytes to decode.
struct Input {
    std::uint8_t seed = 0;
    std::string_view bytes;
    Input(const std::uint8_t* data, std::size_t size)
    {
        if (size > 0) {
            seed = data[0];
            bytes = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
        }
    }
};

// Feeds `bytes` to `feed(p, end)` piece by piece, as `pieces` cuts them (whole when null),
// until `feed` returns false; `feed` advances `p` over what it took.
template <class Feed>
void for_each_piece(std::string_view bytes, Pieces* pieces, Feed feed)
{
    for (std::size_t at = 0; at < bytes.size();) {
        const std::size_t n = pieces ? pieces->next(bytes.size() - at) : bytes.size() - at;
        const char* p = bytes.data() + at;
        at += n;
        if (!feed(p, p + n))
            break;
    }
}

// A property that does not hold: abort, so libFuzzer keeps the input and the driver fails.
[[noreturn]] inline void violated(const char* what)
{
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
}

inline void check(bool ok, const char* what)
{
    if (!ok)
        violated(what);
}

}  // namespace peerdex::fuzz
