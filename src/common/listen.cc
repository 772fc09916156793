#include "listen.hh"

#include <netdb.h>

#include <memory>

#include "console.hh"

namespace peerdex {

int listen_tcp(uv_loop_t* loop, uv_tcp_t* tcp, const std::string& addr, std::uint16_t port, int backlog,
               uv_connection_cb on_connection, const char* program, sockaddr_storage& bound)
{
    uv_tcp_init(loop, tcp);  // first: whatever fails below, the caller closes the handle
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    const char* host = addr.empty() ? "::" : addr.c_str();
    int rc = getaddrinfo(host, service.c_str(), &hints, &res);
    if (rc != 0 && addr.empty())
        rc = getaddrinfo("0.0.0.0", service.c_str(), &hints, &res);  // no IPv6 on this host
    if (rc != 0) {
        if (program)
            Console::error("%s: cannot use listen address '%s': %s", program, host, gai_strerror(rc));
        return UV_EINVAL;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
    rc = uv_tcp_bind(tcp, res->ai_addr, 0);  // IPV6ONLY off: "::" takes IPv4 too
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), backlog, on_connection);
    if (rc != 0) {
        if (program)
            Console::error("%s: cannot listen on %s port %s: %s", program, host, service.c_str(), uv_strerror(rc));
        return rc;
    }
    int len = sizeof bound;
    return uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
}

}  // namespace peerdex
