#include "http_server.hh"

#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include "console.hh"
#include "wire.hh"

namespace peerdex {

const char* HttpExchange::arg(const char* name) const
{
    return MHD_lookup_connection_value(connection_, MHD_GET_ARGUMENT_KIND, name);
}

bool HttpExchange::authorized() const
{
    const std::string& token = server_->options_.token;
    if (token.empty())
        return true;
    const char* h = MHD_lookup_connection_value(connection_, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return false;
    const std::string want = "Bearer " + token;
    const std::size_t n = std::strlen(h);  // a header MHD has NUL-terminated, bounded by its memory limit
    if (n != want.size())
        return false;
    unsigned char diff = 0;  // constant time: the token is a secret
    for (std::size_t i = 0; i < n; ++i)
        diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(h[i]) ^ static_cast<unsigned char>(want[i])));
    return diff == 0;
}

void HttpExchange::reply(unsigned status, std::string_view type, std::string body)
{
    if (answered_)
        return;
    answered_ = true;
    status_ = status;
    type_.assign(type);
    body_ = std::move(body);
    if (token_ != 0)
        server_->kept_.erase(token_);
    if (suspended_) {
        suspended_ = false;
        MHD_resume_connection(connection_);
        server_->run_soon();
    }
}

std::uint64_t HttpExchange::later()
{
    if (token_ == 0) {
        token_ = server_->next_token_++;
        server_->kept_.emplace(token_, this);
    }
    return token_;
}

// MHD's callbacks, with MHD's types, kept out of the header.
struct HttpGlue {
    static MHD_Result accept(void* cls, const sockaddr* addr, socklen_t)
    {
        auto* self = static_cast<HttpServer*>(cls);
        const Address a = Address::from_sockaddr(addr);
        if (a.loopback())
            return MHD_YES;
        for (const Subnet& s : self->options_.allow)
            if (s.contains(a))
                return MHD_YES;
        ++self->refused_;
        Console::debug("s> http: connection from %s refused (not loopback, not in --http-allow)", a.str().c_str());
        return MHD_NO;
    }

    static MHD_Result queue(HttpExchange& x)
    {
        MHD_Response* r = MHD_create_response_from_buffer(x.body_.size(), x.body_.data(), MHD_RESPMEM_MUST_COPY);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, x.type_.c_str());
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        if (x.status_ == MHD_HTTP_UNAUTHORIZED)
            MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"peerdex\"");
        if (x.status_ == MHD_HTTP_METHOD_NOT_ALLOWED)
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        const MHD_Result ret = MHD_queue_response(x.connection_, x.status_, r);
        MHD_destroy_response(r);
        return ret;
    }

    static MHD_Result request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                              const char*, std::size_t* upload_size, void** state)
    {
        auto* self = static_cast<HttpServer*>(cls);
        auto* x = static_cast<HttpExchange*>(*state);
        if (!x) {
            // Headers only, so far: an answer queued now would make MHD close the connection
            // after it. The request is handled at the next call, once it is complete, and
            // the connection can be kept alive (a Prometheus scraping every second).
            auto fresh = std::make_unique<HttpExchange>();
            x = fresh.get();
            x->server_ = self;
            x->connection_ = c;
            x->path_ = url;
            *state = fresh.release();  // freed in completed()
            ++self->requests_;
            const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
            x->head_ = head;
            if (!head && std::strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
                // Refused at once, before any body is read (the connection then closes).
                x->reply(MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET and HEAD\n");
                return queue(*x);
            }
            return MHD_YES;
        }
        if (*upload_size != 0) {
            *upload_size = 0;  // a body on GET is read and ignored, within MHD's memory limit
            return MHD_YES;
        }
        if (!x->handled_) {
            x->handled_ = true;
            self->handler_.handle(*x);
        }
        if (x->answered_)
            return queue(*x);
        if (!x->suspended_ && x->token_ != 0) {
            x->suspended_ = true;
            MHD_suspend_connection(c);
            return MHD_YES;
        }
        if (x->token_ == 0) {  // the handler neither answered nor kept it: a bug, but no hang
            x->reply(MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "no answer\n");
            return queue(*x);
        }
        return MHD_YES;
    }

    static void completed(void* cls, MHD_Connection*, void** state, MHD_RequestTerminationCode)
    {
        auto* self = static_cast<HttpServer*>(cls);
        std::unique_ptr<HttpExchange> x(static_cast<HttpExchange*>(*state));
        *state = nullptr;
        if (x && x->token_ != 0)
            self->kept_.erase(x->token_);
    }

    static void log(void*, const char* format, va_list ap)
    {
        char line[512];
        std::vsnprintf(line, sizeof line, format, ap);
        std::size_t n = std::strlen(line);
        while (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        Console::debug("s> http: %s", line);
    }
};

HttpServer::HttpServer(uv_loop_t* loop, HttpHandler& handler) : loop_(loop), handler_(handler) {}

HttpServer::~HttpServer()
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
}

bool HttpServer::start(const HttpOptions& options, std::string& error)
{
    options_ = options;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(options.addr.c_str(), std::to_string(options.port).c_str(), &hints, &res); rc != 0) {
        error = "--http: cannot use address '" + options.addr + "': " + gai_strerror(rc);
        return false;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
    // No thread: MHD is run from this loop. Suspend and resume for answers that come later
    // (they bring MHD's inter-thread channel, an eventfd in its epoll set, which wakes the loop).
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(
        flags, options.port, &HttpGlue::accept, this, &HttpGlue::request, this, MHD_OPTION_SOCK_ADDR, res->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxPerAddress,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory, MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutS,
        MHD_OPTION_NOTIFY_COMPLETED, &HttpGlue::completed, this, MHD_OPTION_EXTERNAL_LOGGER, &HttpGlue::log,
        nullptr, MHD_OPTION_END);
    if (!daemon_) {
        error = "--http: cannot listen on " + options.addr + " port " + std::to_string(options.port) +
                " (in use, or not an address of this machine)";
        return false;
    }
    const MHD_DaemonInfo* port = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = port ? port->port : options.port;
    const MHD_DaemonInfo* epoll = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
    if (!epoll) {
        error = "--http: libmicrohttpd gave no epoll descriptor";
        return false;
    }
    poll_ = std::make_unique<uv_poll_t>().release();
    timer_ = std::make_unique<uv_timer_t>().release();
    uv_poll_init(loop_, poll_, epoll->epoll_fd);
    poll_->data = this;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_poll_start(poll_, UV_READABLE, &HttpServer::on_poll);
    run();
    return true;
}

std::string HttpServer::endpoint() const
{
    const bool v6 = options_.addr.find(':') != std::string::npos;
    return (v6 ? "[" + options_.addr + "]" : options_.addr) + ":" + std::to_string(port_);
}

void HttpServer::run()
{
    if (!daemon_ || in_run_)
        return;
    in_run_ = true;
    MHD_run(daemon_);
    in_run_ = false;
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(daemon_, &ms) == MHD_YES)
        uv_timer_start(timer_, &HttpServer::on_timer, ms, 0);
    else
        uv_timer_stop(timer_);
}

void HttpServer::run_soon()
{
    if (timer_)
        uv_timer_start(timer_, &HttpServer::on_timer, 0, 0);
}

void HttpServer::on_poll(uv_poll_t* poll, int, int)
{
    static_cast<HttpServer*>(poll->data)->run();
}

void HttpServer::on_timer(uv_timer_t* timer)
{
    static_cast<HttpServer*>(timer->data)->run();
}

bool HttpServer::reply(std::uint64_t token, unsigned status, std::string_view type, std::string body)
{
    const auto it = kept_.find(token);
    if (it == kept_.end())
        return false;
    it->second->reply(status, type, std::move(body));  // erases it from kept_
    return true;
}

void HttpServer::stop()
{
    if (!daemon_)
        return;
    while (!kept_.empty())
        kept_.begin()->second->reply(MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "stopping\n");
    MHD_run(daemon_);  // resumed connections are back in MHD's lists before it stops
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { std::unique_ptr<uv_poll_t>(reinterpret_cast<uv_poll_t*>(h)); });
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { std::unique_ptr<uv_timer_t>(reinterpret_cast<uv_timer_t*>(h)); });
    poll_ = nullptr;
    timer_ = nullptr;
}

}  // namespace peerdex
