// The listening socket every peerdex daemon opens the same way.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace peerdex {

// Binds `tcp` to addr:port and listens. An empty addr means every address, IPv6 and
// IPv4 through one dual-stack socket (IPv4 only on a host without IPv6). On failure
// prints "<program>: ..." (nothing when program is null) and returns the libuv error;
// on success fills `bound`. The handle is initialized in every case: close it.
int listen_tcp(uv_loop_t* loop, uv_tcp_t* tcp, const std::string& addr, std::uint16_t port, int backlog,
               uv_connection_cb on_connection, const char* program, sockaddr_storage& bound);

}  // namespace peerdex
