#include "address.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "wire.hh"

namespace peerdex {

Address Address::from_sockaddr(const sockaddr* sa)
{
    Address a;
    if (sa == nullptr)
        return a;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        a.family = 4;
        std::memcpy(a.bytes, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            a.family = 4;
            std::memcpy(a.bytes, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            a.family = 6;
            std::memcpy(a.bytes, in6->sin6_addr.s6_addr, 16);
        }
    }
    return a;
}

bool Address::parse(const std::string& text, Address& out)
{
    out = Address();
    if (inet_pton(AF_INET, text.c_str(), out.bytes) == 1) {
        out.family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), out.bytes) == 1) {
        out.family = 6;
        return true;
    }
    return false;
}

bool Address::loopback() const
{
    if (family == 4)
        return bytes[0] == 127;
    static const std::uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return family == 6 && std::memcmp(bytes, kLoopback6, 16) == 0;
}

bool Address::to_sockaddr(std::uint16_t port, sockaddr_storage& out) const
{
    out = sockaddr_storage{};
    if (family == 4) {
        auto* in = reinterpret_cast<sockaddr_in*>(&out);
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        std::memcpy(&in->sin_addr, bytes, 4);
        return true;
    }
    if (family == 6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        std::memcpy(&in6->sin6_addr, bytes, 16);
        return true;
    }
    return false;
}

bool Subnet::parse(const std::string& text, Subnet& out)
{
    out = Subnet();
    const std::size_t slash = text.find('/');
    if (!Address::parse(text.substr(0, slash), out.net))
        return false;
    const unsigned bits = out.net.family == 4 ? 32 : 128;
    if (slash == std::string::npos) {
        out.prefix = bits;
        return true;
    }
    const std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
        return false;
    out.prefix = static_cast<unsigned>(std::stoul(p));
    return out.prefix <= bits;
}

bool Subnet::contains(const Address& a) const
{
    if (a.family != net.family)
        return false;
    const unsigned whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.bytes, net.bytes, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a.bytes[whole] & mask) == (net.bytes[whole] & mask);
}

bool operator==(const Address& a, const Address& b)
{
    return a.family == b.family && std::memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) == 0;
}

void Address::append_to(std::string& out) const
{
    if (family == 4) {
        // Hot in LIST_USERS: format by hand instead of inet_ntop.
        char buf[16];
        std::size_t n = 0;
        for (int i = 0; i < 4; ++i) {
            if (i)
                buf[n++] = '.';
            n += format_decimal(bytes[i], buf + n);
        }
        out.append(buf, n);
    } else if (family == 6) {
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, bytes, buf, sizeof buf))
            out.append(buf);
    }
}

std::string Address::str() const
{
    std::string s;
    append_to(s);
    return s;
}

std::uint16_t port_of(const sockaddr* sa)
{
    if (sa && sa->sa_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    if (sa && sa->sa_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    return 0;
}

std::string endpoint_string(const sockaddr* sa)
{
    const Address a = Address::from_sockaddr(sa);
    std::string s = a.family == 6 ? "[" + a.str() + "]" : a.str();
    return s + ":" + std::to_string(port_of(sa));
}

}  // namespace peerdex
