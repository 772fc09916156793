// Content ids (peerdex-protocol(7), CONTENT IDS): the root of a hash tree over a file's
// bytes, written "sha256:" and 64 lowercase hex digits. The tree's leaves are fixed-size
// pieces of the file, so any aligned range can be checked on its own as it arrives.
//
// The shape, like THEX's: a leaf's hash is SHA-256(0x00 || its bytes), a node's is
// SHA-256(0x01 || left || right); each level pairs neighbours from the left and an odd last
// one goes up unchanged; an empty file is one empty leaf. The leaf size follows from the
// file's size alone: 1 MiB, doubled until the file has at most 65,536 leaves.
//
// This file is the text and the arithmetic, with no hashing (the tracker stores ids as they
// come and checks only their shape); the hashing is the client's (src/peer/content_tree.*).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace peerdex {

using Digest = std::array<std::uint8_t, 32>;

constexpr std::uint64_t kMinLeafSize = 1 << 20;
constexpr std::uint64_t kMaxLeaves = 65536;
constexpr std::string_view kContentIdPrefix = "sha256:";
constexpr std::size_t kContentIdLength = 7 + 64;

// The leaf size of a file of `size` bytes.
std::uint64_t leaf_size_for(std::uint64_t size);
// How many leaves it has (an empty file has one): at most kMaxLeaves, so a leaf's index is a
// size_t on every target, 32-bit ones included.
std::size_t leaf_count(std::uint64_t size);

// "sha256:" and the hex digits of `root`.
std::string content_id_text(const Digest& root);
// The root of a well-formed id (the prefix, then 64 hex digits, either case); false else.
bool parse_content_id(std::string_view text, Digest& root);

}  // namespace peerdex
