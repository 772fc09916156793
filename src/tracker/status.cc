#include "status.hh"

#include <ctime>
#include <vector>

#include "html.hh"
#include "operation_log.hh"
#include "prober.hh"
#include "search.hh"
#include "server.hh"

namespace peerdex {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

const char* const kCodeLabels[TrackerMetrics::kCodes] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "other"};

}  // namespace

// One status page being built: the store's answers to its two reads, pulled as they come.
struct TrackerHttp::Page {
    std::uint64_t id = 0;    // in pages_; a store's token is id * 2 (users) or id * 2 + 1 (hits)
    std::uint64_t http = 0;  // the exchange's token
    std::string q;           // the search, as typed
    std::size_t from = 0;    // first connected user shown
    SearchQuery query;
    QueryFault fault = QueryFault::none;
    bool searching = false;
    StoreCounts counts;
    std::unique_ptr<ListStream> users, hits;
    bool users_pending = true, hits_pending = false;  // an answer or entries still to come
    Outcome users_outcome = Outcome::ok, hits_outcome = Outcome::ok;
    std::size_t users_total = 0, hits_total = 0, seen = 0;
    std::vector<UserEndpoint> shown;
    SearchHits found;
};

namespace {

// Takes the entries a page shows: the connected users from `from`, and the hits.
class PageSink final : public ListSink {
public:
    PageSink(std::vector<UserEndpoint>& users, std::size_t& seen, std::size_t from, SearchHits& hits)
        : users_(users), seen_(seen), from_(from), hits_(hits)
    {
    }
    void user(std::string_view name, const Address& ip, std::uint16_t port) override
    {
        ++taken_;
        if (seen_++ >= from_ && users_.size() < TrackerHttp::kPageUsers)
            users_.push_back({std::string(name), ip, port});
    }
    void content(std::string_view, std::string_view, const ContentMeta&) override {}
    void hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
             std::string_view description, const ContentMeta& meta) override
    {
        hits_.add(user, ip, port, path, description, meta);
    }
    void source(std::string_view, const Address&, std::uint16_t, std::string_view, std::uint64_t) override {}
    // Full once the page is, or once this pull has passed kPullEntries: a page far down a
    // long list is skipped to over several loop turns, never in one.
    bool full() const override
    {
        return users_.size() >= TrackerHttp::kPageUsers || taken_ >= TrackerHttp::kPullEntries;
    }

private:
    std::size_t taken_ = 0;
    std::vector<UserEndpoint>& users_;
    std::size_t& seen_;
    std::size_t from_;
    SearchHits& hits_;
};

}  // namespace

TrackerHttp::TrackerHttp(uv_loop_t* loop, TrackerServer& server)
    : loop_(loop), server_(server), http_(loop, *this), started_ns_(uv_hrtime()),
      start_time_s_(static_cast<std::uint64_t>(std::time(nullptr)))
{
}

TrackerHttp::~TrackerHttp() = default;

bool TrackerHttp::start(const HttpOptions& options, std::string& error)
{
    if (!http_.start(options, error))
        return false;
    // The loop's busy time per turn: a prepare handle runs just before each poll; between
    // two of them, whatever libuv did not spend waiting in poll was work.
    prepare_ = std::make_unique<uv_prepare_t>().release();
    uv_prepare_init(loop_, prepare_);
    prepare_->data = this;
    uv_prepare_start(prepare_, &TrackerHttp::on_prepare);
    uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
    idle_ = std::make_unique<uv_idle_t>().release();
    uv_idle_init(loop_, idle_);
    idle_->data = this;
    return true;
}

void TrackerHttp::stop()
{
    http_.stop();  // answers the pages still waiting
    pages_.clear();
    if (prepare_) {
        uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_prepare_t>(reinterpret_cast<uv_prepare_t*>(h)); });
        prepare_ = nullptr;
    }
    if (idle_) {
        uv_close(reinterpret_cast<uv_handle_t*>(idle_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_idle_t>(reinterpret_cast<uv_idle_t*>(h)); });
        idle_ = nullptr;
    }
    later_.clear();
}

void TrackerHttp::on_prepare(uv_prepare_t* prepare)
{
    auto* self = static_cast<TrackerHttp*>(prepare->data);
    const std::uint64_t now = uv_hrtime();
    const std::uint64_t idle = uv_metrics_idle_time(self->loop_);
    if (self->last_turn_ns_ != 0) {
        const std::uint64_t turn = now - self->last_turn_ns_;
        const std::uint64_t waited = idle - self->last_idle_ns_;
        self->turns_.observe_ns(turn > waited ? turn - waited : 0);
    }
    self->last_turn_ns_ = now;
    self->last_idle_ns_ = idle;
}

void TrackerHttp::handle(HttpExchange& x)
{
    const std::string_view path = x.path();
    if (path == "/healthz") {
        x.reply(200, kText, "ok\n");
    } else if (path == "/metrics") {
        if (!x.authorized())
            x.reply(401, kText, "a bearer token is required: Authorization: Bearer TOKEN\n");
        else
            x.reply(200, kMetricsType, metrics_text());
    } else if (path == "/") {
        page(x);
    } else {
        x.reply(404, kText, "not found: try /, /metrics or /healthz\n");
    }
}

std::string TrackerHttp::metrics_text() const
{
    using T = MetricsText::Type;
    const TrackerMetrics& m = server_.metrics();
    const StoreCounts n = server_.store().counts();
    MetricsText out;
    out.family("peerdex_tracker_build_info", T::gauge, "The running version, as a label");
    out.sample("peerdex_tracker_build_info", std::uint64_t{1}, {{"version", PEERDEX_VERSION}});
    out.gauge("peerdex_tracker_start_time_seconds", "When the tracker started, in seconds since the epoch",
              static_cast<double>(start_time_s_));

    out.family("peerdex_tracker_requests_total", T::counter,
               "Replies given, by operation and result code (peerdex-protocol(7), TRACKER REQUESTS)");
    for (std::size_t op = 0; op < TrackerMetrics::kOps; ++op) {
        const std::string name(op_name(static_cast<Op>(op)));
        for (std::size_t c = 0; c < TrackerMetrics::kCodes; ++c)
            if (m.replies[op][c] != 0 || c == 0)
                out.sample("peerdex_tracker_requests_total", m.replies[op][c],
                           {{"operation", name}, {"code", kCodeLabels[c]}});
    }
    out.family("peerdex_tracker_request_duration_seconds", T::histogram,
               "From a request read whole to its reply encoded, by operation");
    for (std::size_t op = 0; op < TrackerMetrics::kOps; ++op)
        out.histogram("peerdex_tracker_request_duration_seconds", m.latency[op],
                      {{"operation", op_name(static_cast<Op>(op))}});

    out.gauge("peerdex_tracker_users_registered", "Users registered", static_cast<double>(n.users));
    out.gauge("peerdex_tracker_users_connected", "Users connected", static_cast<double>(n.connected));
    out.gauge("peerdex_tracker_publications", "Publications of every user", static_cast<double>(n.publications));
    out.gauge("peerdex_tracker_sessions_open", "Client connections open", static_cast<double>(server_.open_sessions()));
    out.counter("peerdex_tracker_sessions_total", "Client connections accepted", m.sessions);
    out.counter("peerdex_tracker_received_bytes_total", "Bytes read from clients", m.bytes_in);
    out.counter("peerdex_tracker_sent_bytes_total", "Bytes written to clients", m.bytes_out);
    out.counter("peerdex_tracker_searches_total", "SEARCH requests submitted", server_.searches());
    out.counter("peerdex_tracker_search_hits_total", "Entries of the SEARCH answers given", m.search_hits);
    out.counter("peerdex_tracker_search_throttled_total", "Times a connection was held back by --search-rate",
                server_.search_throttled());
    out.counter("peerdex_tracker_ownership_refused_total", "Changes refused: the user belongs to another owner",
                server_.ownership_refused());

    const OperationLog* oplog = server_.oplog();
    out.gauge("peerdex_tracker_oplog_enabled", "1 when operations are forwarded to a log server", oplog ? 1 : 0);
    if (oplog) {
        const OperationLog::Counts c = oplog->counts();
        out.gauge("peerdex_tracker_oplog_up", "1 while the log server answers, 0 while it is unreachable",
                  c.reachable ? 1 : 0);
        out.gauge("peerdex_tracker_oplog_queue_entries", "Entries waiting to be delivered",
                  static_cast<double>(c.queued));
        out.counter("peerdex_tracker_oplog_delivered_total", "Entries the log server acknowledged", c.delivered);
        out.counter("peerdex_tracker_oplog_dropped_total", "Entries dropped because the queue was full", c.dropped);
    }

    const Prober* prober = server_.prober();
    out.gauge("peerdex_tracker_probing_enabled", "1 when connected users' peers are probed", prober ? 1 : 0);
    if (prober) {
        const ProbeCounters& pc = prober->counters();
        out.family("peerdex_tracker_probes_total", T::counter, "Liveness probes finished, by result");
        out.sample("peerdex_tracker_probes_total", pc.ok, {{"result", "accepted"}});
        out.sample("peerdex_tracker_probes_total", pc.failed, {{"result", "failed"}});
        out.sample("peerdex_tracker_probes_total", pc.local_errors, {{"result", "local_error"}});
        out.counter("peerdex_tracker_probe_rounds_total", "Rounds over every connected user", pc.rounds);
        out.counter("peerdex_tracker_expired_users_total", "Users disconnected because their peer stopped answering",
                    pc.expired);
    }

    if (const Histogram* commits = server_.store().commit_latency()) {
        out.family("peerdex_tracker_store_commit_duration_seconds", T::histogram,
                   "Durable store: one batch's transaction; shared store: one script's round trip");
        out.histogram("peerdex_tracker_store_commit_duration_seconds", *commits);
    }

    out.family("peerdex_tracker_loop_busy_seconds", T::histogram,
               "Time the tracker's one thread worked in each turn of its event loop (not waiting in poll)");
    out.histogram("peerdex_tracker_loop_busy_seconds", turns_);
    out.counter("peerdex_tracker_http_requests_total", "HTTP requests read", http_.requests());
    out.counter("peerdex_tracker_http_refused_total", "HTTP connections refused: not loopback, not in --http-allow",
                http_.refused());
    return out.take();
}

void TrackerHttp::page(HttpExchange& x)
{
    auto p = std::make_unique<Page>();
    Page& page = *p;
    const std::uint64_t id = next_page_++;
    page.id = id;
    if (const char* from = x.arg("from")) {
        const std::optional<std::uint64_t> n = parse_decimal(from, 100000000);
        page.from = n ? static_cast<std::size_t>(*n) : 0;
    }
    if (const char* q = x.arg("q"); q && *q) {
        page.q = q;
        page.fault = page.q.size() > kMaxQueryBytes ? QueryFault::too_long : parse_query(page.q, page.query);
        page.searching = page.fault == QueryFault::none;
    }
    page.counts = server_.store().counts();
    page.http = x.later();
    page.hits_pending = page.searching;
    pages_.emplace(id, std::move(p));
    ++pages_served_;
    // Both reads go to the store as the operator; each answers now or later (token: page
    // id, and which read). An answer given at once may finish the page and free it: nothing
    // of it is read after the last call that can.
    const bool searching = page.searching;
    const SearchRequest request{&page.query, std::min<std::size_t>(kPageHits, server_.max_results())};
    server_.store().list_users(kOperator, Completion(&TrackerHttp::on_answer, this, id * 2));
    if (searching)
        server_.store().search(kOperator, request, Completion(&TrackerHttp::on_answer, this, id * 2 + 1));
}

void TrackerHttp::on_answer(void* ctx, std::uint64_t token, StoreReply&& reply)
{
    auto* self = static_cast<TrackerHttp*>(ctx);
    const auto it = self->pages_.find(token / 2);
    if (it == self->pages_.end())
        return;
    Page& p = *it->second;
    const bool hits = token % 2 == 1;
    (hits ? p.hits_outcome : p.users_outcome) = reply.outcome;
    if (reply.outcome == Outcome::ok && reply.list) {
        (hits ? p.hits_total : p.users_total) = reply.list->count();
        (hits ? p.hits : p.users) = std::move(reply.list);
        self->pull(p, hits);
    } else {
        (hits ? p.hits_pending : p.users_pending) = false;
        self->done_if_complete(p);
    }
}

void TrackerHttp::on_idle(uv_idle_t* idle)
{
    auto* self = static_cast<TrackerHttp*>(idle->data);
    uv_idle_stop(idle);
    std::vector<std::uint64_t> due;
    due.swap(self->later_);
    for (std::uint64_t token : due)
        on_ready(self, token);
}

void TrackerHttp::on_ready(void* ctx, std::uint64_t token)
{
    auto* self = static_cast<TrackerHttp*>(ctx);
    if (const auto it = self->pages_.find(token / 2); it != self->pages_.end())
        self->pull(*it->second, token % 2 == 1);
}

void TrackerHttp::pull(Page& p, bool hits)
{
    std::unique_ptr<ListStream>& stream = hits ? p.hits : p.users;
    const Wakeup ready{&TrackerHttp::on_ready, this, p.id * 2 + (hits ? 1 : 0)};
    bool finished = false;
    while (!finished) {
        PageSink sink(p.shown, p.seen, p.from, p.found);
        switch (stream->pull(sink, ready)) {
        case ListStream::Pull::more:
            if (!hits && p.shown.size() >= kPageUsers) {
                finished = true;  // this page is full: the rest is not needed
                break;
            }
            // More to skip: on a later turn, so the sessions are served meanwhile.
            later_.push_back(p.id * 2 + (hits ? 1 : 0));
            uv_idle_start(idle_, &TrackerHttp::on_idle);
            return;
        case ListStream::Pull::later:
            return;
        case ListStream::Pull::end:
        case ListStream::Pull::failed:
            finished = true;
            break;
        }
    }
    stream.reset();
    (hits ? p.hits_pending : p.users_pending) = false;
    done_if_complete(p);
}

void TrackerHttp::done_if_complete(Page& p)
{
    if (p.users_pending || p.hits_pending)
        return;
    http_.reply(p.http, 200, "text/html; charset=utf-8", render(p));
    pages_.erase(p.id);
}

std::string TrackerHttp::render(const Page& p) const
{
    const TrackerMetrics& m = server_.metrics();
    const std::uint64_t uptime = (uv_hrtime() - started_ns_) / 1000000000;
    std::string h;
    h.reserve(8192);
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\"><title>peerdex-tracker</title>"
         "<style>body{font:15px/1.4 sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
         "td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}code{background:#f4f4f4}"
         "</style></head><body>\n";
    h += "<h1>peerdex-tracker</h1>\n<p>Version " PEERDEX_VERSION ", up " + std::to_string(uptime / 86400) + " d " +
         std::to_string(uptime / 3600 % 24) + " h " + std::to_string(uptime / 60 % 60) + " min " +
         std::to_string(uptime % 60) + " s. <a href=\"/metrics\">Metrics</a></p>\n";
    h += "<table id=\"counts\">\n";
    const auto row = [&h](const char* id, const char* what, std::uint64_t v) {
        h += "<tr><th>" + std::string(what) + "</th><td id=\"" + id + "\">" + std::to_string(v) + "</td></tr>\n";
    };
    row("users-registered", "Users registered", p.counts.users);
    row("users-connected", "Users connected", p.counts.connected);
    row("publications", "Publications", p.counts.publications);
    row("sessions-open", "Connections open", server_.open_sessions());
    row("searches", "Searches", server_.searches());
    row("bytes-in", "Bytes received", m.bytes_in);
    row("bytes-out", "Bytes sent", m.bytes_out);
    h += "</table>\n";

    h += "<h2>Search</h2>\n<form method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" size=\"40\" value=\"" +
         html_escape(p.q) + "\"> <button type=\"submit\">Search</button></form>\n";
    if (!p.q.empty()) {
        if (p.fault != QueryFault::none) {
            h += "<p id=\"search-error\">Not a search: the query " + html_escape(query_fault_text(p.fault)) + ".</p>\n";
        } else if (p.hits_outcome != Outcome::ok) {
            h += "<p id=\"search-error\">The search could not be answered (search is off: --max-results 0).</p>\n";
        } else {
            h += "<p>" + std::to_string(p.found.size()) + " results for <b>" + html_escape(p.q) +
                 "</b>. To download one, type its command in the <code>peerdex</code> shell:</p>\n"
                 "<table id=\"results\"><tr><th>User</th><th>Path</th><th>Description</th><th>Size</th>"
                 "<th>Command</th></tr>\n";
            for (std::size_t i = 0; i < p.found.size(); ++i) {
                const SearchHit hit = p.found[i];
                const std::string local(file_name_of(hit.path));
                h += "<tr><td>" + html_escape(hit.user) + "</td><td>" + html_escape(hit.path) + "</td><td>" +
                     html_escape(hit.description) + "</td><td>" +
                     (hit.meta.has_size ? std::to_string(hit.meta.size) : std::string()) + "</td><td><code>" +
                     html_escape("GET_FILE " + std::string(hit.user) + " " + std::string(hit.path) + " " + local) +
                     "</code></td></tr>\n";
            }
            h += "</table>\n";
        }
    }

    h += "<h2>Connected users</h2>\n";
    const std::size_t last = p.from + p.shown.size();
    if (p.users_outcome != Outcome::ok) {
        h += "<p>The store could not list them.</p>\n";
    } else if (p.shown.empty()) {
        h += "<p>" + std::string(p.from == 0 ? "Nobody is connected." : "No users on this page.") + "</p>\n";
    } else {
        h += "<p>" + std::to_string(p.from + 1) + " to " + std::to_string(last) + " of " +
             std::to_string(p.users_total) + ".</p>\n<table id=\"users\"><tr><th>User</th><th>Address</th>"
             "<th>Port</th></tr>\n";
        for (const UserEndpoint& u : p.shown)
            h += "<tr><td>" + html_escape(u.name) + "</td><td>" + html_escape(u.ip.str()) + "</td><td>" +
                 std::to_string(u.port) + "</td></tr>\n";
        h += "</table>\n";
    }
    const std::string q = p.q.empty() ? std::string() : "&amp;q=" + url_encode(p.q);
    if (p.from > 0)
        h += "<a rel=\"prev\" href=\"/?from=" + std::to_string(p.from > kPageUsers ? p.from - kPageUsers : 0) + q +
             "\">Previous</a> ";
    if (last < p.users_total)
        h += "<a rel=\"next\" href=\"/?from=" + std::to_string(last) + q + "\">Next</a>";
    h += "\n</body></html>\n";
    return h;
}

}  // namespace peerdex
