// peerdex: the user's shell to the tracker and a file server for other peers
// (see peerdex(1)).
#include <getopt.h>
#include <netdb.h>
#include <uv.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>

#ifdef PEERDEX_HAVE_CURL
#include <curl/curl.h>
#endif

#include "cli.hh"
#include "console.hh"
#include "files.hh"
#include "shell.hh"
#include "subcommands.hh"

namespace {

void usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex -s HOST -p PORT [options]\n"
                 "       peerdex serve [DIR] | upload SRC | download NAME | ls  [options]\n"
                 "Shell to a peerdex tracker, and a file server for the other peers.\n"
                 "Commands are read from the terminal or from standard input, one per line.\n"
                 "\n"
                 "  -s, --server HOST        the tracker's host name or address\n"
                 "  -p, --port PORT          the tracker's port\n"
                 "      --listen-port N      port of this peer's file server (default: a free port\n"
                 "                           between 1024 and 49151)\n"
                 "      --listen-addr ADDR   address of this peer's file server (default: every address)\n"
                 "      --timeout S          seconds to wait for the tracker (default 10)\n"
                 "      --clock URL          date-time service giving each operation's timestamp\n"
                 "                           (default %s); 'local': this machine's\n"
                 "                           clock; 'none': send none\n"
                 "      --stall-timeout S    seconds a download may make no progress (default 30)\n"
                 "      --no-resume          GET_FILE drops what a cut download kept and starts over\n"
                 "      --sources N          GET_FILE fetches from up to N peers that publish the same\n"
                 "                           file at once (1 to 16, default 4; 1: the named user only)\n"
                 "      --upload-slots N     files this peer sends at once (default 0: no limit);\n"
                 "                           other downloaders wait their turn, in order\n"
                 "      --upload-rate RATE   bytes per second this peer sends over all downloads,\n"
                 "                           e.g. 500K, 2M (default 0: no limit)\n"
                 "      --search-walk N      SEARCH on a tracker without it (a course tracker) reads the\n"
                 "                           files of at most N connected users (default 1000)\n"
                 "  -q, --quiet              no reasons or progress on stderr, only the result lines\n"
                 "  -v, --verbose            also connection details on stderr\n"
                 "  -h, --help               show this help\n"
                 "  -V, --version            show the version\n"
                 "\n"
                 "Commands: REGISTER <user>, UNREGISTER <user>, CONNECT <user>, DISCONNECT <user>,\n"
                 "PUBLISH <path> <description>, DELETE <path>, LIST_USERS, LIST_CONTENT <user>,\n"
                 "GET_FILE <user> <remote path> <local path>, SEARCH <terms...>, GET <n> [local path]\n"
                 "(the n-th hit of the last SEARCH), STATS, HELP, QUIT.\n"
                 "On a terminal: line editing, history (Up) and Tab completion; Ctrl-C cancels a\n"
                 "download in progress, and at the prompt quits.\n"
                 "Exit status: 0 when every command succeeded, 1 when one failed, 2 usage error.\n"
                 "\n"
                 "Without a tracker: 'peerdex serve' shares a directory; 'peerdex upload', 'download'\n"
                 "and 'ls' talk to such a server ('peerdex COMMAND --help'). See peerdex(1).\n",
                 peerdex::default_clock());
}

}  // namespace

int main(int argc, char** argv)
{
    enum {
        opt_listen_port = 256,
        opt_listen_addr,
        opt_timeout,
        opt_stall,
        opt_clock,
        opt_search_walk,
        opt_no_resume,
        opt_slots,
        opt_rate,
        opt_sources,
    };
    static const option longs[] = {
        {"server", required_argument, nullptr, 's'},
        {"port", required_argument, nullptr, 'p'},
        {"listen-port", required_argument, nullptr, opt_listen_port},
        {"listen-addr", required_argument, nullptr, opt_listen_addr},
        {"timeout", required_argument, nullptr, opt_timeout},
        {"stall-timeout", required_argument, nullptr, opt_stall},
        {"clock", required_argument, nullptr, opt_clock},
        {"search-walk", required_argument, nullptr, opt_search_walk},
        {"no-resume", no_argument, nullptr, opt_no_resume},
        {"upload-slots", required_argument, nullptr, opt_slots},
        {"upload-rate", required_argument, nullptr, opt_rate},
        {"sources", required_argument, nullptr, opt_sources},
        {"quiet", no_argument, nullptr, 'q'},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    std::signal(SIGPIPE, SIG_IGN);
    // The pool runs every file operation of the peer listener and the downloads, and a
    // GET_TREE or LIST_FILES may hold a thread for long: more than libuv's 4, unless the
    // user chose.
    ::setenv("UV_THREADPOOL_SIZE", "8", 0);
    if (argc > 1) {
        const std::string sub = argv[1];
        int (*run)(int, char**) = sub == "serve"      ? peerdex::serve_main
                                  : sub == "upload"   ? peerdex::upload_main
                                  : sub == "download" ? peerdex::download_main
                                  : sub == "ls"       ? peerdex::ls_main
#ifdef PEERDEX_CONTENT_IDS
                                  : sub == "hash"     ? peerdex::hash_main
#endif
                                                      : nullptr;
#ifndef PEERDEX_CONTENT_IDS
        if (sub == "hash") {
            std::fprintf(stderr, "peerdex hash: this peerdex was built without content ids (libcrypto)\n");
            return 2;
        }
#endif
        if (run) {
            static std::string name;  // getopt's messages name the subcommand
            name = "peerdex " + sub;
            argv[1] = name.data();
            return run(argc - 1, argv + 1);
        }
    }
    const char* prog = "peerdex";
    std::string host;
    std::uint64_t port = 0;
    peerdex::ShellOptions opt;
    opt.clock_url = peerdex::default_clock();
    int c;
    while ((c = getopt_long(argc, argv, "s:p:qvhV", longs, nullptr)) != -1) {
        switch (c) {
        case 's':
            host = optarg;
            break;
        case 'p':
            port = peerdex::number_option(prog, "port", optarg, 1, 65535);
            break;
        case opt_listen_port:
            opt.listen_port = static_cast<std::uint16_t>(peerdex::number_option(prog, "--listen-port", optarg, 1, 65535));
            break;
        case opt_listen_addr:
            opt.listen_addr = optarg;
            break;
        case opt_timeout:
            opt.timeout_ms = 1000 * peerdex::number_option(prog, "--timeout", optarg, 1, 3600);
            break;
        case opt_stall:
            opt.stall_ms = 1000 * peerdex::number_option(prog, "--stall-timeout", optarg, 1, 3600);
            break;
        case opt_no_resume:
            opt.resume = false;
            break;
        case opt_slots:
            opt.upload_slots = peerdex::size_option(prog, "--upload-slots", optarg, 0, 1000);
            break;
        case opt_rate: {
            const auto n = peerdex::parse_size(optarg);
            if (!n)
                peerdex::bad_option(prog, "--upload-rate", optarg);
            opt.upload_rate = *n;
            break;
        }
        case opt_sources:
            opt.sources = peerdex::size_option(prog, "--sources", optarg, 1, 16);
            break;
        case opt_search_walk:
            opt.search_walk = peerdex::size_option(prog, "--search-walk", optarg, 1, 10000000);
            break;
        case opt_clock:
            opt.clock_url = std::strcmp(optarg, "none") == 0 ? "" : optarg;
            if (!opt.clock_url.empty() && opt.clock_url != peerdex::kLocalClock && !peerdex::clock_urls_supported()) {
                std::fprintf(stderr, "%s: --clock %s: this peerdex was built without libcurl: give 'local' (this "
                                     "machine's clock, the default) or 'none'\n",
                             prog, optarg);
                return 2;
            }
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'v':
            opt.verbose = true;
            break;
        default:
            peerdex::other_option(c, "peerdex", usage);
        }
    }
    if (host.empty() || port == 0 || optind < argc) {
        if (optind < argc)
            std::fprintf(stderr, "peerdex: unexpected argument '%s' (try --help)\n", argv[optind]);
        else
            std::fprintf(stderr, "peerdex: -s HOST and -p PORT name the tracker (try --help)\n");
        return 2;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
        std::fprintf(stderr, "peerdex: cannot resolve tracker host '%s': %s\n", host.c_str(), gai_strerror(rc));
        return 2;
    }
    std::memcpy(&opt.tracker, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    opt.tracker_name = host + ":" + std::to_string(port);

    peerdex::Console::init(opt.quiet     ? peerdex::Verbosity::quiet
                           : opt.verbose ? peerdex::Verbosity::verbose
                                         : peerdex::Verbosity::normal);
#ifdef PEERDEX_HAVE_CURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
    uv_loop_t* loop = uv_default_loop();
    peerdex::Shell shell(loop, opt);
    uv_signal_t signals[2];
    const int signums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; ++i) {
        uv_signal_init(loop, &signals[i]);
        signals[i].data = &shell;
        uv_signal_start(
            &signals[i],
            [](uv_signal_t* h, int signum) {
                auto* sh = static_cast<peerdex::Shell*>(h->data);
                if (signum == SIGINT)
                    sh->interrupt();
                else
                    sh->request_quit();
            },
            signums[i]);
        uv_unref(reinterpret_cast<uv_handle_t*>(&signals[i]));
    }
    shell.start();
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto& s : signals)
        uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
    uv_run(loop, UV_RUN_DEFAULT);
    return shell.exit_status();
}
