// Ownership (peerdex-protocol(7), OWNERSHIP): who may change a user. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "address.hh"

namespace peerdex {

// --auth: none (the course: anyone may act for anyone), ip (a user belongs to the address
// that registered it), key (a user registered with a key belongs to that key, from any
// address; one registered without a key, to its address).
enum class AuthMode : std::uint8_t { none, ip, key };

// Who sends a request: the session's peer address (IPv4-mapped IPv6 as IPv4) and, in a
// HELLO session, the key it showed for the user acted on (empty: none).
struct Requester {
    Address ip;
    std::string_view key;
};

// What the tracker keeps of a key: a BLAKE2b-256 hash, never the key.
using KeyHash = std::array<std::uint8_t, 32>;

// True when this build can hash keys (libsodium); --auth key needs it.
bool keys_supported();
// The hash of `key`; false when the build cannot hash.
bool hash_key(std::string_view key, KeyHash& out);

}  // namespace peerdex
