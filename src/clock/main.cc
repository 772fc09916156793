// peerdex-clock: the date-time service of peerdex (see peerdex-clock(8)).
// libmicrohttpd does the HTTP, in its own threads, with explicit limits; the main
// thread only waits for SIGINT/SIGTERM.
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "address.hh"
#include "cli.hh"
#include "datetime.hh"
#include "metrics.hh"

namespace {

constexpr std::uint16_t kDefaultPort = 5000;
constexpr unsigned kConnectionTimeoutS = 10;       // a request that never ends
constexpr unsigned kConnectionLimit = 1024;
constexpr unsigned kPerIpLimit = 256;
constexpr std::size_t kConnectionMemory = 16 * 1024;  // request line and headers included

// GET /metrics: replies by status, counted by every serving thread.
constexpr unsigned kStatuses[] = {200, 400, 404, 405, 500};
std::atomic<std::uint64_t> replies_by_status[std::size(kStatuses) + 1];  // the last: any other
std::atomic<std::uint64_t> datetime_replies[2];                          // course, iso8601
std::uint64_t start_time_s;

std::string metrics_text()
{
    peerdex::MetricsText out;
    out.family("peerdex_clock_build_info", peerdex::MetricsText::Type::gauge, "The running version, as a label");
    out.sample("peerdex_clock_build_info", std::uint64_t{1}, {{"version", PEERDEX_VERSION}});
    out.gauge("peerdex_clock_start_time_seconds", "When the clock started, in seconds since the epoch",
              static_cast<double>(start_time_s));
    out.family("peerdex_clock_responses_total", peerdex::MetricsText::Type::counter, "HTTP responses, by status");
    for (std::size_t i = 0; i <= std::size(kStatuses); ++i) {
        const std::string code = i < std::size(kStatuses) ? std::to_string(kStatuses[i]) : "other";
        out.sample("peerdex_clock_responses_total", replies_by_status[i].load(std::memory_order_relaxed),
                   {{"code", code}});
    }
    out.family("peerdex_clock_timestamps_total", peerdex::MetricsText::Type::counter,
               "Timestamps served by GET /datetime, by format");
    out.sample("peerdex_clock_timestamps_total", datetime_replies[0].load(std::memory_order_relaxed),
               {{"format", "course"}});
    out.sample("peerdex_clock_timestamps_total", datetime_replies[1].load(std::memory_order_relaxed),
               {{"format", "iso8601"}});
    return out.take();
}

MHD_Result reply(MHD_Connection* c, unsigned status, const std::string& body, const char* type,
                 const char* allow = nullptr)
{
    std::size_t i = 0;
    while (i < std::size(kStatuses) && kStatuses[i] != status)
        ++i;
    replies_by_status[i].fetch_add(1, std::memory_order_relaxed);
    MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                      MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    const MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

MHD_Result handle(void*, MHD_Connection* c, const char* url, const char* method, const char*, const char*,
                  size_t* upload_size, void** state)
{
    static int headers_seen;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && std::strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        // Refused at once, before any body is read (the connection then closes).
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "text/plain; charset=utf-8",
                     "GET, HEAD");
    }
    // A response queued at the first call (headers only) makes libmicrohttpd close the
    // connection; the second call comes once the request is complete: keep-alive works.
    if (*state == nullptr) {
        *state = &headers_seen;
        return MHD_YES;
    }
    if (*upload_size != 0) {  // a GET with a body: not ours to read
        *upload_size = 0;
        return MHD_YES;
    }
    if (std::strcmp(url, "/healthz") == 0)
        return reply(c, MHD_HTTP_OK, "ok\n", "text/plain; charset=utf-8");
    if (std::strcmp(url, "/metrics") == 0)
        return reply(c, MHD_HTTP_OK, metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
    if (std::strcmp(url, "/datetime") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /datetime\n", "text/plain; charset=utf-8");
    const std::time_t now = std::time(nullptr);
    const char* format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    std::string ts;
    if (format && std::strcmp(format, "iso8601") == 0) {
        ts = peerdex::iso8601_timestamp(now);
        datetime_replies[1].fetch_add(1, std::memory_order_relaxed);
    } else if (format && *format) {
        return reply(c, MHD_HTTP_BAD_REQUEST, "unknown format: try format=iso8601\n", "text/plain; charset=utf-8");
    } else {
        ts = peerdex::course_timestamp(now);
        datetime_replies[0].fetch_add(1, std::memory_order_relaxed);
    }
    const char* accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    if (accept && peerdex::prefers_json(accept))
        return reply(c, MHD_HTTP_OK, "{\"datetime\": \"" + ts + "\"}", "application/json");
    return reply(c, MHD_HTTP_OK, ts, "text/plain; charset=utf-8");  // no trailing newline (DATE-TIME SERVICE)
}

void usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex-clock [options]\n"
                 "Serves the date and time over HTTP: GET /datetime (peerdex-protocol(7), DATE-TIME SERVICE).\n"
                 "Also GET /healthz, and GET /metrics for Prometheus (peerdex-clock(8), METRICS).\n"
                 "\n"
                 "  -p, --port PORT      TCP port (default %u; 0 picks a free one)\n"
                 "  -l, --listen ADDR    address to listen on (default 127.0.0.1)\n"
                 "      --threads N      threads serving requests (default 1)\n"
                 "  -h, --help           show this help\n"
                 "  -V, --version        show the version\n"
                 "\n"
                 "The time zone is TZ's, as for any Unix program. SIGINT or SIGTERM stops it.\n"
                 "See peerdex-clock(8).\n",
                 kDefaultPort);
}

}  // namespace

int main(int argc, char** argv)
{
    enum { opt_threads = 256 };
    static const option longs[] = {
        {"port", required_argument, nullptr, 'p'},
        {"listen", required_argument, nullptr, 'l'},
        {"threads", required_argument, nullptr, opt_threads},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    const char* prog = "peerdex-clock";
    std::uint16_t port = kDefaultPort;
    std::string addr = "127.0.0.1";
    unsigned threads = 1;
    int c;
    while ((c = getopt_long(argc, argv, "p:l:hV", longs, nullptr)) != -1) {
        switch (c) {
        case 'p':
            port = static_cast<std::uint16_t>(peerdex::number_option(prog, "port", optarg, 0, 65535));
            break;
        case 'l':
            addr = optarg;
            break;
        case opt_threads:
            threads = static_cast<unsigned>(peerdex::number_option(prog, "--threads", optarg, 1, 256));
            break;
        default:
            peerdex::other_option(c, "peerdex-clock", usage);
        }
    }
    peerdex::no_arguments_left("peerdex-clock", optind, argc, argv);
    tzset();
    start_time_s = static_cast<std::uint64_t>(std::time(nullptr));

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
        std::fprintf(stderr, "peerdex-clock: cannot use listen address '%s': %s\n", addr.c_str(), gai_strerror(rc));
        return 2;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);

    // The signals are waited for below; block them before MHD starts its threads.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // ITC: stopping wakes the polling threads at once instead of at their next timeout.
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO | MHD_USE_ITC;
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    MHD_OptionItem options[] = {
        {MHD_OPTION_SOCK_ADDR, 0, res->ai_addr},
        {MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutS, nullptr},
        {MHD_OPTION_CONNECTION_LIMIT, kConnectionLimit, nullptr},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, kPerIpLimit, nullptr},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(kConnectionMemory), nullptr},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, static_cast<intptr_t>(threads), nullptr},
        {MHD_OPTION_END, 0, nullptr},
    };
    MHD_Daemon* d = MHD_start_daemon(flags, port, nullptr, nullptr, &handle, nullptr, MHD_OPTION_ARRAY, options,
                                     MHD_OPTION_END);
    if (!d) {
        std::fprintf(stderr, "peerdex-clock: cannot listen on %s port %u\n", addr.c_str(), port);
        return 1;
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    std::fprintf(stderr, "peerdex-clock: listening on %s%s%s:%u\n", res->ai_family == AF_INET6 ? "[" : "",
                 addr.c_str(), res->ai_family == AF_INET6 ? "]" : "", info ? info->port : port);

    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
