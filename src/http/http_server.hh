// A daemon's HTTP side (GET /metrics, /healthz, a status page): libmicrohttpd driven from
// the daemon's own libuv loop, with no thread of its own. MHD runs in its external-polling
// mode on epoll: its one epoll descriptor is watched by a uv_poll_t, its timeout by a
// uv_timer_t, and MHD_run() is called on the loop whenever either fires (docs/DESIGN.md,
// "HTTP inside the loop"). Every limit is MHD's own and fixed here: connections, memory per
// connection, idle timeout.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http_options.hh"

struct MHD_Daemon;
struct MHD_Connection;

namespace peerdex {

class HttpExchange;

// What answers the requests: called on the loop for each GET or HEAD. It answers at once
// (exchange.reply) or keeps the exchange and answers later, on the loop (exchange.later()).
class HttpHandler {
public:
    virtual void handle(HttpExchange& exchange) = 0;

protected:
    ~HttpHandler() = default;
};

class HttpServer;

// One request. Valid until it has been answered; an exchange kept for later is answered
// exactly once, or cancelled by the server when it stops (answered 503).
class HttpExchange {
public:
    std::string_view path() const { return path_; }
    bool head() const { return head_; }
    // A query argument, decoded; null when absent.
    const char* arg(const char* name) const;
    // True when the request carried the configured bearer token (or none is configured).
    bool authorized() const;
    // The answer: status, content type, body.
    void reply(unsigned status, std::string_view type, std::string body);
    // Keeps the exchange: the answer comes later, on the loop, by HttpServer::reply(token).
    // The token outlives the exchange safely: a reply to an exchange gone (its client left,
    // the server stopped) is dropped.
    std::uint64_t later();

private:
    friend class HttpServer;
    friend struct HttpGlue;
    HttpServer* server_ = nullptr;
    MHD_Connection* connection_ = nullptr;
    std::string path_;
    std::uint64_t token_ = 0;  // non-zero once kept for later
    bool head_ = false;
    bool handled_ = false;
    bool suspended_ = false;
    bool answered_ = false;
    unsigned status_ = 0;
    std::string type_, body_;
};

class HttpServer {
public:
    // Connections at once, bytes of memory per connection, seconds before an idle one closes.
    static constexpr unsigned kMaxConnections = 64;
    static constexpr unsigned kMaxPerAddress = 16;
    static constexpr std::size_t kConnectionMemory = 32 * 1024;
    static constexpr unsigned kIdleTimeoutS = 10;

    HttpServer(uv_loop_t* loop, HttpHandler& handler);
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    ~HttpServer();

    // Listens as `options` say. False and `error` set when it cannot.
    bool start(const HttpOptions& options, std::string& error);
    // The port listened on (after start).
    std::uint16_t port() const { return port_; }
    // "ADDR:PORT" ("[ADDR]:PORT" for IPv6) for the daemon's console line.
    std::string endpoint() const;
    // Exchanges still kept for later are answered 503; the daemon stops; the handles close.
    void stop();

    // Answers an exchange kept by later(); false when it is gone (dropped).
    bool reply(std::uint64_t token, unsigned status, std::string_view type, std::string body);

    // Counters for the daemon's own /metrics.
    std::uint64_t requests() const { return requests_; }
    std::uint64_t refused() const { return refused_; }

private:
    friend class HttpExchange;
    friend struct HttpGlue;
    static void on_poll(uv_poll_t* poll, int status, int events);
    static void on_timer(uv_timer_t* timer);
    void run();
    void run_soon();

    uv_loop_t* loop_;
    HttpHandler& handler_;
    HttpOptions options_;
    MHD_Daemon* daemon_ = nullptr;
    std::uint16_t port_ = 0;
    uv_poll_t* poll_ = nullptr;    // freed in their close callbacks
    uv_timer_t* timer_ = nullptr;
    std::unordered_map<std::uint64_t, HttpExchange*> kept_;
    std::uint64_t next_token_ = 1;
    std::uint64_t requests_ = 0, refused_ = 0;
    bool in_run_ = false;
};

}  // namespace peerdex
