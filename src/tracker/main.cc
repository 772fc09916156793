// peerdex-tracker: the central index of peerdex (see peerdex-tracker(8)).
#include <getopt.h>
#include <sys/resource.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hh"
#include "http_options.hh"
#include "console.hh"
#include "operation_log.hh"
#ifdef PEERDEX_HAVE_OPLOG
#include "oplog.hh"
#endif
#include "server.hh"
#ifdef PEERDEX_HAVE_HTTP
#include "status.hh"
#endif
#include "wire.hh"

namespace {

constexpr std::uint64_t kMaxIdleTimeoutS = 24 * 3600;
constexpr std::uint64_t kMaxProbeS = 24 * 3600;
// At SIGTERM the operation log gets this long to deliver its backlog.
constexpr std::uint64_t kOplogFlushMs = 2000;

void usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex-tracker [options]\n"
                 "The central index of peerdex: users, their peer endpoints and their published files.\n"
                 "\n"
                 "  -p, --port PORT        TCP port to listen on (default %u; 0 picks a free one)\n"
                 "  -l, --listen ADDR      address to listen on (default: every IPv6 and IPv4 address)\n"
                 "      --max-conns N      most client connections at once (default: from the fd limit,\n"
                 "                         at most 10000); further clients wait in the backlog\n"
                 "      --idle-timeout S   close a connection that makes no progress for S seconds (default 30)\n"
                 "      --log HOST:PORT    send every operation to peerdex-logd at HOST:PORT (no rpcbind);\n"
                 "                         without it, LOG_RPC_IP=HOST finds peerdex-logd through rpcbind\n"
                 "      --log-queue N      entries kept while the log server is slow or down (default 100000);\n"
                 "                         beyond that the oldest are dropped and counted\n"
                 "      --state FILE       keep the index in the SQLite database FILE (created if absent):\n"
                 "                         it survives restarts and crashes; a reply leaves only once\n"
                 "                         what it reflects is committed\n"
                 "      --sync full|normal with --state: full (default) survives power loss; normal\n"
                 "                         survives a crash of the tracker, not of the machine\n"
                 "      --store NAME       where the index lives without --state: memory (default);\n"
                 "                         redis://HOST[:PORT][/DB] or unix:/path: in Redis, shared by\n"
                 "                         every tracker pointed at it; delayed is the memory store\n"
                 "                         answering one loop turn late, for testing\n"
                 "      --auth MODE        who may change a user: none (anyone, as in the course), ip (the\n"
                 "                         address that registered it), key (the key it registered with,\n"
                 "                         from any address; else its address). Default: %s\n"
                 "      --probe-interval S check each connected user's peer listener every S seconds\n"
                 "                         (default 60; 0 turns probing and expiry off)\n"
                 "      --probe-timeout S  a probe not accepted within S seconds fails (default 5)\n"
                 "      --probe-failures N disconnect a user after N consecutive failed probes (default 3)\n"
                 "      --probe-rate N     start at most N probes per second (default 1000); at most\n"
                 "                         64 are open at once\n"
                 "      --max-results N    SEARCH (and SOURCES) answer at most N entries, whatever limit\n"
                 "                         they ask (default %u, at most 1000; 0 turns both off, and keeps no\n"
                 "                         search index)\n"
                 "      --search-rate N    SEARCHes a connection may send per second, in bursts of as many\n"
                 "                         (default %u; 0: no limit); beyond, it is not read until it may\n"
                 "      --search-budget N  publications one SEARCH may examine before it answers with\n"
                 "                         what it found (default %zu)\n"
                 "      --http [ADDR:]PORT serve GET /metrics (Prometheus), /healthz and a status page / over\n"
                 "                         HTTP on ADDR (default 127.0.0.1) port PORT; off by default\n"
                 "      --http-allow NET   also let ADDR[/PREFIX] connect to --http (default: loopback only);\n"
                 "                         may be repeated\n"
                 "      --http-token-file FILE\n"
                 "                         /metrics wants 'Authorization: Bearer TOKEN', TOKEN the first line\n"
                 "                         of FILE (mode 600)\n"
                 "  -q, --quiet            print only the init line and errors\n"
                 "  -v, --verbose          also print refused and malformed requests with the peer address\n"
                 "  -h, --help             show this help\n"
                 "  -V, --version          show the version\n"
                 "\n"
                 "SIGINT or SIGTERM stops accepting, finishes pending replies, flushes the operation log\n"
                 "(at most 2 s) and exits 0. SIGUSR1 prints the index's and the operation log's counters.\n"
                 "See peerdex-tracker(8) and peerdex-protocol(7).\n",
                 peerdex::kDefaultTrackerPort, peerdex::keys_supported() ? "key" : "ip (built without libsodium)",
                 peerdex::kDefaultMaxResults, peerdex::kDefaultSearchRate, peerdex::kDefaultSearchBudget);
}

std::uint64_t number_option(const char* what, const char* value, std::uint64_t min, std::uint64_t max)
{
    return peerdex::number_option("peerdex-tracker", what, value, min, max);
}

void raise_fd_limit()
{
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

int main(int argc, char** argv)
{
    enum {
        opt_max_conns = 256,
        opt_idle_timeout,
        opt_log,
        opt_log_queue,
        opt_store,
        opt_state,
        opt_sync,
        opt_probe_interval,
        opt_probe_timeout,
        opt_probe_failures,
        opt_probe_rate,
        opt_auth,
        opt_max_results,
        opt_search_rate,
        opt_search_budget,
        opt_http,
        opt_http_allow,
        opt_http_token_file,
    };
    static const option long_options[] = {
        {"port", required_argument, nullptr, 'p'},
        {"listen", required_argument, nullptr, 'l'},
        {"max-conns", required_argument, nullptr, opt_max_conns},
        {"idle-timeout", required_argument, nullptr, opt_idle_timeout},
        {"log", required_argument, nullptr, opt_log},
        {"log-queue", required_argument, nullptr, opt_log_queue},
        {"store", required_argument, nullptr, opt_store},
        {"state", required_argument, nullptr, opt_state},
        {"sync", required_argument, nullptr, opt_sync},
        {"probe-interval", required_argument, nullptr, opt_probe_interval},
        {"probe-timeout", required_argument, nullptr, opt_probe_timeout},
        {"probe-failures", required_argument, nullptr, opt_probe_failures},
        {"probe-rate", required_argument, nullptr, opt_probe_rate},
        {"auth", required_argument, nullptr, opt_auth},
        {"max-results", required_argument, nullptr, opt_max_results},
        {"search-rate", required_argument, nullptr, opt_search_rate},
        {"search-budget", required_argument, nullptr, opt_search_budget},
        {"quiet", no_argument, nullptr, 'q'},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {"http", required_argument, nullptr, opt_http},
        {"http-allow", required_argument, nullptr, opt_http_allow},
        {"http-token-file", required_argument, nullptr, opt_http_token_file},
        {nullptr, 0, nullptr, 0},
    };
    peerdex::TrackerOptions options;
    std::string log_spec;
    peerdex::StoreConfig store_config;
    // The default protects every user without changing a course client: it is the ip rule
    // for them, and peerdex clients keep their users across addresses with their keys.
    store_config.auth = peerdex::keys_supported() ? peerdex::AuthMode::key : peerdex::AuthMode::ip;
    std::size_t log_queue = peerdex::kDefaultLogQueue;
    peerdex::HttpFlags http_flags;
    auto verbosity = peerdex::Verbosity::normal;
    int c;
    while ((c = getopt_long(argc, argv, "p:l:qvhV", long_options, nullptr)) != -1) {
        switch (c) {
        case 'p':
            options.port = static_cast<std::uint16_t>(number_option("port", optarg, 0, 65535));
            break;
        case 'l':
            options.listen_addr = optarg;
            break;
        case opt_max_conns:
            options.max_conns = peerdex::size_option("peerdex-tracker", "--max-conns", optarg, 1, 1000000);
            break;
        case opt_idle_timeout:
            options.idle_timeout_ms = 1000 * number_option("--idle-timeout", optarg, 1, kMaxIdleTimeoutS);
            break;
        case opt_log:
            log_spec = optarg;
            break;
        case opt_log_queue:
            log_queue = peerdex::size_option("peerdex-tracker", "--log-queue", optarg, 1, 100000000);
            break;
        case opt_store:
            store_config.name = optarg;
            if (store_config.name != "memory" && store_config.name != "delayed" &&
                !peerdex::is_redis_target(store_config.name)) {
                std::fprintf(stderr,
                             "peerdex-tracker: --store: unknown store '%s' (memory, delayed, "
                             "redis://HOST[:PORT][/DB] or unix:/path)\n",
                             optarg);
                return 2;
            }
            break;
        case opt_state:
            store_config.state = optarg;
            if (store_config.state.empty()) {
                std::fprintf(stderr, "peerdex-tracker: --state needs a file name\n");
                return 2;
            }
            break;
        case opt_sync:
            if (std::string_view(optarg) != "full" && std::string_view(optarg) != "normal") {
                std::fprintf(stderr, "peerdex-tracker: --sync: '%s' is neither full nor normal\n", optarg);
                return 2;
            }
            store_config.sync_full = std::string_view(optarg) == "full";
            break;
        case opt_probe_interval:
            options.probe.interval_ms = 1000 * number_option("--probe-interval", optarg, 0, kMaxProbeS);
            break;
        case opt_probe_timeout:
            options.probe.timeout_ms = 1000 * number_option("--probe-timeout", optarg, 1, kMaxProbeS);
            break;
        case opt_probe_failures:
            options.probe.failures = static_cast<unsigned>(number_option("--probe-failures", optarg, 1, 1000));
            break;
        case opt_probe_rate:
            options.probe.rate = static_cast<unsigned>(number_option("--probe-rate", optarg, 1, 1000000));
            break;
        case opt_auth: {
            const std::string_view mode = optarg;
            if (mode == "none") {
                store_config.auth = peerdex::AuthMode::none;
            } else if (mode == "ip") {
                store_config.auth = peerdex::AuthMode::ip;
            } else if (mode == "key") {
                if (!peerdex::keys_supported()) {
                    std::fprintf(stderr, "peerdex-tracker: --auth key: this build has no libsodium "
                                         "(meson setup -Dkeys=enabled); use ip or none\n");
                    return 2;
                }
                store_config.auth = peerdex::AuthMode::key;
            } else {
                std::fprintf(stderr, "peerdex-tracker: --auth: '%s' is none of none, ip, key\n", optarg);
                return 2;
            }
            break;
        }
        case opt_max_results:
            options.max_results = static_cast<unsigned>(number_option("--max-results", optarg, 0, peerdex::kMaxSearchLimit));
            break;
        case opt_search_rate:
            options.search_rate = static_cast<unsigned>(number_option("--search-rate", optarg, 0, 1000000));
            break;
        case opt_search_budget:
            store_config.search_budget = peerdex::size_option("peerdex-tracker", "--search-budget", optarg, 1, 100000000);
            break;
        case opt_http:
            http_flags.spec = optarg;
            break;
        case opt_http_allow:
            http_flags.allow.emplace_back(optarg);
            break;
        case opt_http_token_file:
            http_flags.token_file = optarg;
            break;
        case 'q':
            verbosity = peerdex::Verbosity::quiet;
            break;
        case 'v':
            verbosity = peerdex::Verbosity::verbose;
            break;
        default:
            peerdex::other_option(c, "peerdex-tracker", usage);
        }
    }
    peerdex::no_arguments_left("peerdex-tracker", optind, argc, argv);
    peerdex::HttpOptions http_options;
    if (!peerdex::http_options_from("peerdex-tracker", http_flags, peerdex::kHttpBuilt, http_options))
        return 2;
    if (!store_config.state.empty() && !store_config.name.empty()) {
        std::fprintf(stderr, "peerdex-tracker: --state and --store name two different stores: give one\n");
        return 2;
    }

    std::signal(SIGPIPE, SIG_IGN);  // a peer that vanishes mid-write must not kill the tracker
    raise_fd_limit();
    peerdex::Console::init(verbosity, /*nonblocking=*/true);

    // Where the operation log goes: --log (direct), else LOG_RPC_IP (rpcbind), else nowhere.
    std::string error;
    const char* rpc_ip = std::getenv("LOG_RPC_IP");
#ifdef PEERDEX_HAVE_OPLOG
    peerdex::OplogTarget target;
    bool logging = false;
    if (!log_spec.empty())
        logging = peerdex::parse_log_target(log_spec, target, error);
    else if (rpc_ip && *rpc_ip)
        logging = peerdex::rpcbind_log_target(rpc_ip, target, error);
    if (!error.empty()) {
        std::fprintf(stderr, "peerdex-tracker: %s\n", error.c_str());
        return 2;
    }
#else
    if (!log_spec.empty()) {
        std::fprintf(stderr, "peerdex-tracker: --log: this peerdex-tracker was built without operation-log forwarding "
                             "(meson setup -Doplog=enabled, with libtirpc)\n");
        return 2;
    }
    if (rpc_ip && *rpc_ip)
        peerdex::Console::error("s> oplog: LOG_RPC_IP ignored: this peerdex-tracker was built without operation-log "
                                "forwarding");
    (void)log_queue;
#endif

    // A shared store's probe leases outlive a round twice: the tracker holding a user keeps
    // it while alive, and another takes it over once that one is gone.
    store_config.lease_ms = 2 * std::max<std::uint64_t>(options.probe.interval_ms, 1000);
    if (options.max_results == 0)
        store_config.search_budget = 0;  // SEARCH off: no index kept
    uv_loop_t* loop = uv_default_loop();
    std::unique_ptr<peerdex::Store> store = peerdex::make_store(loop, store_config, error);
    if (!store) {
        std::fprintf(stderr, "peerdex-tracker: %s\n", error.c_str());
        return 1;
    }
    options.auth = store_config.auth;
    peerdex::TrackerServer server(loop, options, std::move(store));
    std::unique_ptr<peerdex::OperationLog> oplog;
#ifdef PEERDEX_HAVE_OPLOG
    if (logging) {
        auto forwarder = std::make_unique<peerdex::OplogForwarder>(loop, target, log_queue);
        forwarder->start();
        oplog = std::move(forwarder);
    }
#endif
    if (oplog) {
        server.set_oplog(oplog.get());
    } else {
        peerdex::Console::info("s> oplog: no log server configured (--log HOST:PORT or LOG_RPC_IP): logging off");
    }

#ifdef PEERDEX_HAVE_HTTP
    std::unique_ptr<peerdex::TrackerHttp> http;
    if (!http_flags.spec.empty()) {
        uv_loop_configure(loop, UV_METRICS_IDLE_TIME);  // the busy time per turn, before the loop runs
        http = std::make_unique<peerdex::TrackerHttp>(loop, server);
        if (!http->start(http_options, error)) {
            std::fprintf(stderr, "peerdex-tracker: %s\n", error.c_str());
            return 1;
        }
    }
    peerdex::TrackerHttp* http_side = http.get();
#else
    void* http_side = nullptr;
#endif
    struct Context {
        peerdex::TrackerServer* server;
        peerdex::OperationLog* oplog;
        decltype(http_side) http;
    } context{&server, oplog.get(), http_side};
    uv_signal_t signals[3];
    const int signums[3] = {SIGINT, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; ++i) {
        uv_signal_init(loop, &signals[i]);
        signals[i].data = &context;
        uv_signal_start(
            &signals[i],
            [](uv_signal_t* h, int signum) {
                auto* ctx = static_cast<Context*>(h->data);
                if (signum == SIGUSR1) {
                    const peerdex::StoreCounts n = ctx->server->store().counts();
                    peerdex::Console::error("s> index: %zu users registered, %zu connected, %zu publications",
                                            n.users, n.connected, n.publications);
                    peerdex::Console::error("s> ownership: %llu changes refused (another owner's user)",
                                            static_cast<unsigned long long>(ctx->server->ownership_refused()));
                    peerdex::Console::error("s> search: %llu queries, %llu times a connection was held back "
                                            "by --search-rate",
                                            static_cast<unsigned long long>(ctx->server->searches()),
                                            static_cast<unsigned long long>(ctx->server->search_throttled()));
                    if (const peerdex::Prober* p = ctx->server->prober()) {
                        const peerdex::ProbeCounters& pc = p->counters();
                        peerdex::Console::error("s> probes: %llu started, %llu accepted, %llu failed, %llu not "
                                                "counted (local errors), %llu users expired, %llu rounds",
                                                static_cast<unsigned long long>(pc.probes),
                                                static_cast<unsigned long long>(pc.ok),
                                                static_cast<unsigned long long>(pc.failed),
                                                static_cast<unsigned long long>(pc.local_errors),
                                                static_cast<unsigned long long>(pc.expired),
                                                static_cast<unsigned long long>(pc.rounds));
                    }
                    if (ctx->oplog)
                        ctx->oplog->print_stats();
                    return;
                }
                ctx->server->stop();
                if (ctx->oplog)
                    ctx->oplog->stop(kOplogFlushMs);
#ifdef PEERDEX_HAVE_HTTP
                if (ctx->http)
                    ctx->http->stop();
#endif
            },
            signums[i]);
    }
    // Signal handles must not keep the loop alive once the server has closed everything.
    for (auto& s : signals)
        uv_unref(reinterpret_cast<uv_handle_t*>(&s));

    // The banner says the tracker is ready, and whoever reads it may signal at once: the
    // handlers are in place before it is printed, or SIGUSR1's default action ends the tracker.
    if (server.start() != 0)
        return 1;
#ifdef PEERDEX_HAVE_HTTP
    if (http)  // after the init line, which stays the first (readiness)
        peerdex::Console::banner("s> http: listening on %s", http->endpoint().c_str());
#endif
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto& s : signals)
        uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
    // Everything is stored and closed: a second SIGTERM now (a service manager insisting)
    // must not turn this clean exit into a kill. Closing the handles restored the defaults.
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    uv_run(loop, UV_RUN_DEFAULT);
    peerdex::Console::flush();
    if (peerdex::Console::dropped() != 0)
        peerdex::Console::error("s> %llu console lines dropped: standard output was not being read",
                                static_cast<unsigned long long>(peerdex::Console::dropped()));
    uv_loop_close(loop);
    return 0;
}
