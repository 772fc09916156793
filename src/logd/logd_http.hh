// The log server's HTTP side, --http (peerdex-logd(8), HTTP): GET /metrics and /healthz,
// served from its own loop by HttpServer.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "http_server.hh"

namespace peerdex {

class LogdServer;

class LogdHttp final : public HttpHandler {
public:
    LogdHttp(uv_loop_t* loop, const LogdServer& server) : server_(server), http_(loop, *this) {}
    bool start(const HttpOptions& options, std::string& error) { return http_.start(options, error); }
    std::string endpoint() const { return http_.endpoint(); }
    void stop() { http_.stop(); }

    void handle(HttpExchange& exchange) override;
    std::string metrics_text() const;

private:
    const LogdServer& server_;
    HttpServer http_;
};

}  // namespace peerdex
