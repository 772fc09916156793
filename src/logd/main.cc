// peerdex-logd: the ONC-RPC operation log server of peerdex (see peerdex-logd(8)).
#include <getopt.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli.hh"
#include "http_options.hh"
#include "console.hh"
#ifdef PEERDEX_HAVE_HTTP
#include "logd_http.hh"
#endif
#include "server.hh"
#include "store.hh"
#include "wire.hh"

namespace {

void usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex-logd [options]\n"
                 "Writes one line per tracker operation received over ONC-RPC (program 0x20504458, version 1).\n"
                 "\n"
                 "  -p, --port PORT          TCP port to listen on (default %u; 0 picks a free one)\n"
                 "  -l, --listen ADDR        address to listen on (default: every IPv6 and IPv4 address)\n"
                 "  -o, --output FILE        append the log to FILE (default: standard output)\n"
                 "      --state FILE         duplicate-detection journal (default: FILE.state with -o,\n"
                 "                           none on standard output)\n"
                 "      --fsync MODE         always (every line), batch (every call; default) or never\n"
                 "      --rpcbind MODE       auto (register when rpcbind runs; default), yes (must), no\n"
                 "      --max-conns N        most client connections at once (default 1024)\n"
                 "      --idle-timeout S     close a connection silent for S seconds (default 60)\n"
                 "      --allow ADDR[/PREFIX] take calls only from there (repeatable); default: loopback\n"
                 "                           when listening on loopback, otherwise required\n"
                 "      --http [ADDR:]PORT   serve GET /metrics (Prometheus) and /healthz over HTTP on ADDR\n"
                 "                           (default 127.0.0.1) port PORT; off by default\n"
                 "      --http-allow NET     also let ADDR[/PREFIX] connect to --http (default: loopback only)\n"
                 "      --http-token-file FILE  /metrics wants 'Authorization: Bearer TOKEN', TOKEN the first\n"
                 "                           line of FILE (mode 600)\n"
                 "  -q, --quiet              print errors only\n"
                 "  -v, --verbose            also print refused records and timeouts\n"
                 "  -h, --help               show this help\n"
                 "  -V, --version            show the version\n"
                 "\n"
                 "SIGHUP reopens the output file (log rotation); SIGUSR1 prints statistics;\n"
                 "SIGINT or SIGTERM stops. See peerdex-logd(8).\n",
                 peerdex::kDefaultLogdPort);
}

void bad_option(const char* what, const char* value)
{
    peerdex::bad_option("peerdex-logd", what, value);
}

std::uint64_t number_option(const char* what, const char* value, std::uint64_t min, std::uint64_t max)
{
    return peerdex::number_option("peerdex-logd", what, value, min, max);
}

struct Signals {
    peerdex::LogdServer* server;
#ifdef PEERDEX_HAVE_HTTP
    peerdex::LogdHttp* http;
#else
    void* http;
#endif
    uv_signal_t handles[4];
};

}  // namespace

int main(int argc, char** argv)
{
    enum {
        opt_state = 256,
        opt_fsync,
        opt_rpcbind,
        opt_max_conns,
        opt_idle_timeout,
        opt_allow,
        opt_http,
        opt_http_allow,
        opt_http_token_file,
    };
    static const option long_options[] = {
        {"port", required_argument, nullptr, 'p'},
        {"listen", required_argument, nullptr, 'l'},
        {"output", required_argument, nullptr, 'o'},
        {"state", required_argument, nullptr, opt_state},
        {"fsync", required_argument, nullptr, opt_fsync},
        {"rpcbind", required_argument, nullptr, opt_rpcbind},
        {"max-conns", required_argument, nullptr, opt_max_conns},
        {"idle-timeout", required_argument, nullptr, opt_idle_timeout},
        {"allow", required_argument, nullptr, opt_allow},
        {"http", required_argument, nullptr, opt_http},
        {"http-allow", required_argument, nullptr, opt_http_allow},
        {"http-token-file", required_argument, nullptr, opt_http_token_file},
        {"quiet", no_argument, nullptr, 'q'},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    peerdex::LogdOptions options;
    std::string output, state;
    bool state_given = false;
    auto fsync = peerdex::FsyncPolicy::batch;
    auto verbosity = peerdex::Verbosity::normal;
    peerdex::HttpFlags http_flags;
    int c;
    while ((c = getopt_long(argc, argv, "p:l:o:qvhV", long_options, nullptr)) != -1) {
        switch (c) {
        case 'p':
            options.port = static_cast<std::uint16_t>(number_option("port", optarg, 0, 65535));
            break;
        case 'l':
            options.listen_addr = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case opt_state:
            state = optarg;
            state_given = true;
            break;
        case opt_fsync:
            if (!std::strcmp(optarg, "always"))
                fsync = peerdex::FsyncPolicy::always;
            else if (!std::strcmp(optarg, "batch"))
                fsync = peerdex::FsyncPolicy::batch;
            else if (!std::strcmp(optarg, "never"))
                fsync = peerdex::FsyncPolicy::never;
            else
                bad_option("--fsync mode", optarg);
            break;
        case opt_rpcbind:
            if (!std::strcmp(optarg, "auto"))
                options.rpcbind = peerdex::RpcbindMode::automatic;
            else if (!std::strcmp(optarg, "yes"))
                options.rpcbind = peerdex::RpcbindMode::yes;
            else if (!std::strcmp(optarg, "no"))
                options.rpcbind = peerdex::RpcbindMode::no;
            else
                bad_option("--rpcbind mode", optarg);
            break;
        case opt_max_conns:
            options.max_conns = peerdex::size_option("peerdex-logd", "--max-conns", optarg, 1, 1000000);
            break;
        case opt_idle_timeout:
            options.idle_timeout_ms = 1000 * number_option("--idle-timeout", optarg, 1, 24 * 3600);
            break;
        case opt_allow: {
            peerdex::Subnet s;
            if (!peerdex::Subnet::parse(optarg, s))
                bad_option("--allow address or ADDR/PREFIX", optarg);
            options.allow.push_back(s);
            break;
        }
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
            peerdex::other_option(c, "peerdex-logd", usage);
        }
    }
    peerdex::no_arguments_left("peerdex-logd", optind, argc, argv);
    peerdex::HttpOptions http_options;
    if (!peerdex::http_options_from("peerdex-logd", http_flags, peerdex::kHttpBuilt, http_options))
        return 2;
    if (!state_given && !output.empty())
        state = output + ".state";
    if (options.allow.empty()) {
        // Anyone who reaches the port could forge the audit trail: only loopback by
        // default, and only when nothing else can reach the port anyway.
        peerdex::Address listen;
        if (!peerdex::Address::parse(options.listen_addr, listen) || !listen.loopback()) {
            std::fprintf(stderr,
                         "peerdex-logd: listening on %s lets anyone who reaches it write the log: name who may "
                         "with --allow ADDR[/PREFIX] (repeatable), or listen on 127.0.0.1 (-l)\n",
                         options.listen_addr.empty() ? "every address" : options.listen_addr.c_str());
            return 2;
        }
        peerdex::Subnet s;
        peerdex::Subnet::parse("127.0.0.0/8", s);
        options.allow.push_back(s);
        peerdex::Subnet::parse("::1", s);
        options.allow.push_back(s);
    }

    std::signal(SIGPIPE, SIG_IGN);
    peerdex::Console::init(verbosity);
    peerdex::LogStore store(output, state, fsync);
    if (store.open() != 0) {
        peerdex::Console::error("peerdex-logd: %s", store.message().c_str());
        return 1;
    }
    uv_loop_t* loop = uv_default_loop();
    peerdex::LogdServer server(loop, store, options);

#ifdef PEERDEX_HAVE_HTTP
    std::unique_ptr<peerdex::LogdHttp> http;
    if (!http_flags.spec.empty()) {
        http = std::make_unique<peerdex::LogdHttp>(loop, server);
        if (std::string error; !http->start(http_options, error)) {
            peerdex::Console::error("peerdex-logd: %s", error.c_str());
            return 1;
        }
    }
    Signals sig{&server, http.get(), {}};
#else
    Signals sig{&server, nullptr, {}};
#endif
    const int signums[4] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; ++i) {
        uv_signal_init(loop, &sig.handles[i]);
        sig.handles[i].data = &sig;
        uv_signal_start(
            &sig.handles[i],
            [](uv_signal_t* h, int signum) {
                auto* sigs = static_cast<Signals*>(h->data);
                peerdex::LogdServer* s = sigs->server;
                if (signum == SIGHUP) {
                    s->reopen();
                } else if (signum == SIGUSR1) {
                    s->print_stats();
                } else {
                    s->stop();
#ifdef PEERDEX_HAVE_HTTP
                    if (sigs->http)
                        sigs->http->stop();
#endif
                }
            },
            signums[i]);
        uv_unref(reinterpret_cast<uv_handle_t*>(&sig.handles[i]));
    }
    // Handlers first: the readiness line invites signals (SIGUSR1's default action kills).
    if (server.start() != 0)
        return 1;
#ifdef PEERDEX_HAVE_HTTP
    if (http)  // after the RPC listening line, which stays the first (readiness)
        peerdex::Console::error("peerdex-logd: http: serving on %s", http->endpoint().c_str());
#endif
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto& h : sig.handles)
        uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
    uv_run(loop, UV_RUN_DEFAULT);
    if (peerdex::Console::normal())
        server.print_stats();
    uv_loop_close(loop);
    return 0;
}
