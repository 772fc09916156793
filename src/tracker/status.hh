// The tracker's HTTP side, --http (peerdex-tracker(8), HTTP): GET /metrics in Prometheus's
// text format, GET /healthz, and GET / a read-only status page with the connected users and a
// search. Served by HttpServer from the tracker's own loop; the page reads the store through
// the same interface as the sessions, as the operator (kOperator).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http_server.hh"
#include "metrics.hh"
#include "store.hh"

namespace peerdex {

class TrackerServer;

class TrackerHttp final : public HttpHandler {
public:
    // Connected users on one page of the status page.
    static constexpr std::size_t kPageUsers = 100;
    // Hits shown for a search from the page (the tracker's --max-results still caps it).
    static constexpr std::size_t kPageHits = 100;
    // Entries of a list one loop turn passes over for a page (the rest on later turns).
    static constexpr std::size_t kPullEntries = 4096;

    TrackerHttp(uv_loop_t* loop, TrackerServer& server);
    TrackerHttp(const TrackerHttp&) = delete;
    TrackerHttp& operator=(const TrackerHttp&) = delete;
    ~TrackerHttp();

    bool start(const HttpOptions& options, std::string& error);
    std::string endpoint() const { return http_.endpoint(); }
    // Pages still being built are answered 503; the listener and the handles close.
    void stop();

    void handle(HttpExchange& exchange) override;
    std::string metrics_text() const;

private:
    struct Page;
    void page(HttpExchange& x);
    void pull(Page& p, bool hits);
    void done_if_complete(Page& p);
    std::string render(const Page& p) const;
    static void on_prepare(uv_prepare_t* prepare);
    static void on_answer(void* ctx, std::uint64_t token, StoreReply&& reply);
    static void on_ready(void* ctx, std::uint64_t token);
    static void on_idle(uv_idle_t* idle);

    uv_loop_t* loop_;
    TrackerServer& server_;
    HttpServer http_;
    uv_prepare_t* prepare_ = nullptr;  // freed in its close callback
    uv_idle_t* idle_ = nullptr;        // pages with more to pull go on at the next turn
    std::vector<std::uint64_t> later_;  // their tokens
    Histogram turns_;                  // the loop's busy time per turn
    std::uint64_t last_turn_ns_ = 0, last_idle_ns_ = 0;
    std::uint64_t started_ns_;
    std::uint64_t start_time_s_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Page>> pages_;
    std::uint64_t next_page_ = 1;
    std::uint64_t pages_served_ = 0;
};

}  // namespace peerdex
