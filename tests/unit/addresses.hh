// Addresses for unit tests, from their text.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include "address.hh"

namespace peerdex::test {

inline Address ipv4(const char* text)
{
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, text, &sa.sin_addr);
    return Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

}  // namespace peerdex::test
