#include "logd_http.hh"

#include "metrics.hh"
#include "server.hh"

namespace peerdex {

void LogdHttp::handle(HttpExchange& x)
{
    constexpr const char* text = "text/plain; charset=utf-8";
    if (x.path() == "/healthz")
        x.reply(200, text, "ok\n");
    else if (x.path() != "/metrics")
        x.reply(404, text, "not found: try /metrics or /healthz\n");
    else if (!x.authorized())
        x.reply(401, text, "a bearer token is required: Authorization: Bearer TOKEN\n");
    else
        x.reply(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text());
}

std::string LogdHttp::metrics_text() const
{
    using T = MetricsText::Type;
    const LogdServer::Metrics m = server_.metrics();
    MetricsText out;
    out.family("peerdex_logd_build_info", T::gauge, "The running version, as a label");
    out.sample("peerdex_logd_build_info", std::uint64_t{1}, {{"version", PEERDEX_VERSION}});
    out.counter("peerdex_logd_calls_total", "ONC-RPC calls answered", m.calls);
    out.counter("peerdex_logd_entries_written_total", "Log entries stored (written, and synced as --fsync says)",
                m.written);
    out.counter("peerdex_logd_duplicates_dropped_total", "Entries dropped as already stored (a tracker's resend)",
                m.duplicates);
    out.counter("peerdex_logd_bad_records_total", "Records refused as malformed", m.rejected);
    out.counter("peerdex_logd_store_failures_total", "Batches the log or journal could not store", m.store_failures);
    out.family("peerdex_logd_sync_duration_seconds", T::histogram, "Each fdatasync of the log and the journal");
    out.histogram("peerdex_logd_sync_duration_seconds", m.syncs);
    out.gauge("peerdex_logd_connections_open", "Client connections open", static_cast<double>(m.open));
    out.counter("peerdex_logd_connections_total", "Client connections accepted and allowed", m.connections);
    out.counter("peerdex_logd_connections_refused_total", "Connections closed unread: not in --allow", m.not_allowed);
    return out.take();
}

}  // namespace peerdex
