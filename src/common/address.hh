// A peer's IP address kept in 17 bytes and printed the way peerdex-protocol(7), 
// TRACKER REQUESTS wants: IPv4 dotted quad (also for IPv4-mapped IPv6), IPv6 in its textual form.
#pragma once

#include <cstdint>
#include <string>

struct sockaddr;
struct sockaddr_storage;

namespace peerdex {

struct Address {
    std::uint8_t family = 0;  // 4 or 6; 0 = unknown
    std::uint8_t bytes[16] = {};

    static Address from_sockaddr(const sockaddr* sa);
    // The textual form back (as str() writes it); false for anything else.
    static bool parse(const std::string& text, Address& out);
    // Appends the textual form (no NUL).
    void append_to(std::string& out) const;
    std::string str() const;
    // 127.0.0.0/8 (also IPv4-mapped) or ::1: reachable from this machine only.
    bool loopback() const;
    // The socket address of this IP and `port` (AF_INET or AF_INET6); false when unknown.
    bool to_sockaddr(std::uint16_t port, sockaddr_storage& out) const;

    friend bool operator==(const Address& a, const Address& b);
    friend bool operator!=(const Address& a, const Address& b) { return !(a == b); }
};

// An address block, ADDR/PREFIX (a single address without /PREFIX): what an allow-list holds.
struct Subnet {
    Address net;
    unsigned prefix = 0;  // bits that must match: 0 to 32 (IPv4) or 128 (IPv6)

    // "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"; false for anything else.
    static bool parse(const std::string& text, Subnet& out);
    bool contains(const Address& a) const;
};

// The port of an IPv4 or IPv6 socket address, in host order (0 for other families).
std::uint16_t port_of(const sockaddr* sa);

// "IP:PORT", or "[IP]:PORT" for IPv6, for console lines.
std::string endpoint_string(const sockaddr* sa);

}  // namespace peerdex
