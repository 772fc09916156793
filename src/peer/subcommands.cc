#include "subcommands.hh"

#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "address.hh"
#include "cli.hh"
#include "console.hh"
#ifdef PEERDEX_CONTENT_IDS
#include "content_tree.hh"
#endif
#include "content_id.hh"
#include "download.hh"
#include "files.hh"
#include "peer_server.hh"
#include "transfer.hh"
#include "upload_file.hh"

namespace peerdex {

namespace {

constexpr std::uint64_t kDefaultGraceS = 10;

// ---- serve -------------------------------------------------------------------------

void serve_usage(FILE* out)
{
    std::fprintf(out,
                 "Usage: peerdex serve [options] [DIR]\n"
                 "Shares the regular files directly inside DIR (default: the current directory):\n"
                 "GET_FILE, LIST_FILES and PUT_FILE of peerdex-protocol(7), FILE SERVER, no tracker needed.\n"
                 "\n"
                 "  -H, --host ADDR         address to listen on (default 127.0.0.1: this machine\n"
                 "                          only; '::' or '0.0.0.0' shares with the network)\n"
                 "  -p, --port PORT         port to listen on (default %u; 0: a free port)\n"
                 "  -s, --dir DIR           the directory to share\n"
                 "      --read-only         refuse uploads\n"
                 "      --max-upload SIZE   largest upload accepted, e.g. 512M, 4G (default: no limit\n"
                 "                          but the free disk space)\n"
                 "      --upload-slots N    files sent at once (default 0: no limit); other downloads\n"
                 "                          wait their turn, in order\n"
                 "      --upload-rate RATE  bytes per second over all downloads served, e.g. 500K, 2M\n"
                 "                          (default 0: no limit)\n"
                 "      --grace S           on SIGINT/SIGTERM/q, seconds transfers in progress may take\n"
                 "                          to finish before they are cut (default %llu)\n"
                 "  -q, --quiet             only errors (and the line saying where it listens)\n"
                 "  -v, --verbose           also every refused request and stored upload\n"
                 "  -h, --help              show this help\n"
                 "\n"
                 "On a terminal: s + Enter prints statistics (as SIGUSR1 does), q + Enter stops.\n",
                 kServeDefaultPort, static_cast<unsigned long long>(kDefaultGraceS));
}

struct Serve {
    uv_loop_t* loop;
    PeerServer server;
    uv_signal_t signals[3]{};
    uv_tty_t tty{};
    bool tty_open = false;
    std::string typed;
    std::uint64_t grace_ms;
    bool stopping = false;

    Serve(uv_loop_t* l, std::string addr, std::uint16_t port, std::uint64_t grace)
        : loop(l), server(l, std::move(addr), port), grace_ms(grace)
    {
    }

    void print_stats()
    {
        std::string text = server.stats_text();
        text.pop_back();  // the banner adds the last newline
        Console::banner("%s", text.c_str());
    }

    void quit()
    {
        if (stopping) {
            Console::info("peerdex: stopping now; transfers in progress are cut");
            server.stop();
            return;
        }
        stopping = true;
        Console::info("peerdex: stopping (transfers in progress get %llu s to finish; again to cut them)",
                      static_cast<unsigned long long>(grace_ms / 1000));
        server.drain(grace_ms, [this] {
            for (auto& s : signals)
                uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
            if (tty_open) {
                uv_tty_reset_mode();
                uv_close(reinterpret_cast<uv_handle_t*>(&tty), nullptr);
            }
            print_stats();
        });
    }

    void on_line(const std::string& line)
    {
        std::string word;
        for (char c : line)
            if (c != ' ' && c != '\t' && c != '\r')
                word += c;
        if (word == "s" || word == "S")
            print_stats();
        else if (word == "q" || word == "Q")
            quit();
        else if (!word.empty())
            Console::error("peerdex: s + Enter: statistics, q + Enter: stop");
    }

    void start_keyboard()
    {
        // s and q are for a person at a terminal in the foreground; scripts use the
        // signals. Sent to the background later, a read gets EIO rather than a stop.
        std::signal(SIGTTIN, SIG_IGN);
        const pid_t foreground = tcgetpgrp(STDIN_FILENO);  // -1: not our controlling terminal
        if (!isatty(STDIN_FILENO) || (foreground != -1 && foreground != getpgrp()) ||
            uv_tty_init(loop, &tty, STDIN_FILENO, 1) != 0)
            return;
        tty_open = true;
        tty.data = this;
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&tty),
            [](uv_handle_t*, std::size_t, uv_buf_t* b) {
                static char in[1024];
                *b = uv_buf_init(in, sizeof in);
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
                auto* self = static_cast<Serve*>(s->data);
                if (n < 0) {
                    uv_read_stop(s);  // the terminal is gone: signals still work
                    return;
                }
                self->typed.append(b->base, static_cast<std::size_t>(n));
                for (std::size_t nl; (nl = self->typed.find('\n')) != std::string::npos;) {
                    const std::string line = self->typed.substr(0, nl);
                    self->typed.erase(0, nl + 1);
                    self->on_line(line);
                }
                if (self->typed.size() > 1024)
                    self->typed.clear();
            });
        uv_unref(reinterpret_cast<uv_handle_t*>(&tty));  // it never keeps the loop alive
    }
};

}  // namespace

int serve_main(int argc, char** argv)
{
    enum { opt_read_only = 256, opt_max_upload, opt_grace, opt_slots, opt_rate };
    static const option longs[] = {
        {"host", required_argument, nullptr, 'H'},
        {"port", required_argument, nullptr, 'p'},
        {"dir", required_argument, nullptr, 's'},
        {"read-only", no_argument, nullptr, opt_read_only},
        {"max-upload", required_argument, nullptr, opt_max_upload},
        {"grace", required_argument, nullptr, opt_grace},
        {"upload-slots", required_argument, nullptr, opt_slots},
        {"upload-rate", required_argument, nullptr, opt_rate},
        {"quiet", no_argument, nullptr, 'q'},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    const char* prog = "peerdex serve";
    // Loopback unless told: a directory (and uploads into it) reaches the network only
    // when the user asks for it (peerdex(1) says why).
    std::string host = "127.0.0.1", dir;
    std::uint64_t port = kServeDefaultPort, max_upload = UINT64_MAX, grace_s = kDefaultGraceS;
    std::uint64_t upload_slots = 0, upload_rate = 0;
    bool read_only = false;
    Verbosity verbosity = Verbosity::normal;
    int c;
    while ((c = getopt_long(argc, argv, "H:p:s:qvh", longs, nullptr)) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = number_option(prog, "port", optarg, 0, 65535);
            break;
        case 's':
            dir = optarg;
            break;
        case opt_read_only:
            read_only = true;
            break;
        case opt_max_upload: {
            const auto n = parse_size(optarg);
            if (!n)
                bad_option(prog, "--max-upload", optarg);
            max_upload = *n;
            break;
        }
        case opt_grace:
            grace_s = number_option(prog, "--grace", optarg, 0, 3600);
            break;
        case opt_slots:
            upload_slots = number_option(prog, "--upload-slots", optarg, 0, 1000);
            break;
        case opt_rate: {
            const auto n = parse_size(optarg);
            if (!n)
                bad_option(prog, "--upload-rate", optarg);
            upload_rate = *n;
            break;
        }
        case 'q':
            verbosity = Verbosity::quiet;
            break;
        case 'v':
            verbosity = Verbosity::verbose;
            break;
        default:
            other_option(c, prog, serve_usage);
        }
    }
    if (optind < argc && dir.empty())
        dir = argv[optind++];  // peerdex-protocol(7) writes it `peerdex serve DIR`
    no_arguments_left(prog, optind, argc, argv);
    if (dir.empty())
        dir = ".";
    Console::init(verbosity, true);  // a stdout nobody reads must not stall the loop
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        Console::error("%s: cannot share %s: %s", prog, dir.c_str(), std::strerror(errno));
        return 1;
    }
    char real[PATH_MAX];
    const std::string shown = ::realpath(dir.c_str(), real) ? real : dir;

    uv_loop_t* loop = uv_default_loop();
    // Port 0 asks for any free port; the peer listener's own rule picks one.
    Serve serve(loop, host, static_cast<std::uint16_t>(port), grace_s * 1000);
    if (const int stale = UploadFile::remove_stale(dir_fd))
        Console::info("peerdex: removed %d unfinished upload%s left by an earlier run", stale, stale == 1 ? "" : "s");
    serve.server.share_directory(dir_fd, read_only, max_upload);
    serve.server.set_upload_limits(static_cast<std::size_t>(upload_slots), upload_rate);
#ifdef PEERDEX_CONTENT_IDS
    serve.server.set_tree_cache(tree_cache_dir());
#endif
    if (serve.server.start(prog) != 0)
        return 1;
    const int signums[3] = {SIGINT, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; ++i) {
        uv_signal_init(loop, &serve.signals[i]);
        serve.signals[i].data = &serve;
        uv_signal_start(
            &serve.signals[i],
            [](uv_signal_t* h, int signum) {
                auto* self = static_cast<Serve*>(h->data);
                if (signum == SIGUSR1)
                    self->print_stats();
                else
                    self->quit();
            },
            signums[i]);
        uv_unref(reinterpret_cast<uv_handle_t*>(&serve.signals[i]));
    }
    // The banner says ready; the signal handlers are already in place when it is read.
    const auto* bound = reinterpret_cast<const sockaddr*>(&serve.server.bound());
    const bool loopback = Address::from_sockaddr(bound).loopback();
    Console::banner("peerdex: serving %s on %s (%s%s)", shown.c_str(),
                    endpoint_string(bound).c_str(),
                    loopback ? "this machine only, -H :: shares with the network; " : "",
                    read_only ? "read-only"
                    : max_upload == UINT64_MAX
                        ? "uploads up to the free disk space"
                        : ("uploads up to " + human_size(static_cast<double>(max_upload))).c_str());
    serve.start_keyboard();
    uv_run(loop, UV_RUN_DEFAULT);
    ::close(dir_fd);
    return 0;
}

// ---- upload, download, ls ------------------------------------------------------------

namespace {

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint64_t port = kServeDefaultPort;
    std::uint64_t timeout_s = 30;
    bool quiet = false, verbose = false;
    std::string extra;  // -n NAME, -d DST
    bool bytes = false;
    bool resume = true;  // download: --no-resume
    bool verify = true;  // download: --no-verify
    std::string id;      // download: --id ID
    std::vector<std::string> args;
};

void client_usage(FILE* out, const char* cmd)
{
    const std::string c = cmd;
    std::fprintf(out, "Usage: peerdex %s [options] %s\n", cmd,
                 c == "upload" ? "SRC [-n NAME]" : c == "download" ? "NAME [-d DST]" : "");
    std::fprintf(out, "%s\n",
                 c == "upload"     ? "Sends the local file SRC to a peerdex server, stored as NAME (default: SRC's\n"
                                     "file name); a file of that name there is replaced atomically."
                 : c == "download" ? "Fetches NAME from a peerdex server (or any peer) into DST (default: NAME's\n"
                                     "file name in the current directory; a directory: NAME inside it)."
                                   : "Lists the files of a peerdex server: date, size, name.");
    std::fprintf(out,
                 "\n"
                 "  -H, --host HOST         the server (default 127.0.0.1)\n"
                 "  -p, --port PORT         its port (default %u)\n",
                 kServeDefaultPort);
    if (c == "upload")
        std::fprintf(out, "  -n, --name NAME         the name on the server\n");
    if (c == "download")
        std::fprintf(out, "  -d, --dest DST          where to write the file\n"
                          "      --id ID             the content id the file must have (sha256:...); the\n"
                          "                          server's own tree is trusted otherwise\n"
                          "      --no-resume         drop what an earlier, cut download of DST kept and\n"
                          "                          start over\n"
                          "      --no-verify         plain GET_FILE, checked by its length only (a slow CPU)\n");
    if (c == "ls")
        std::fprintf(out, "      --bytes             sizes in bytes rather than human units\n");
    std::fprintf(out,
                 "      --timeout S         seconds without progress before giving up (default 30)\n"
                 "  -q, --quiet             only errors\n"
                 "  -v, --verbose           also connection details\n"
                 "  -h, --help              show this help\n"
                 "\n"
                 "Exit status: 0 done, 1 failed (one line on stderr says why), 2 usage error%s.\n",
                 c == "download" ? "; 128+N when signal N (Ctrl-C, SIGTERM, SIGHUP) cancelled it.\n"
                                   "From a peerdex server every byte is checked against the file's content id,\n"
                                   "and what a cut download verified is kept, hidden, for the next run"
                                 : "");
}

// Parses the common options; returns -1 to go on, or an exit status.
int parse_client(int argc, char** argv, const char* cmd, ClientOptions& o)
{
    enum { opt_bytes = 256, opt_timeout, opt_no_resume, opt_id, opt_no_verify };
    static const option longs[] = {
        {"host", required_argument, nullptr, 'H'},
        {"port", required_argument, nullptr, 'p'},
        {"name", required_argument, nullptr, 'n'},
        {"dest", required_argument, nullptr, 'd'},
        {"bytes", no_argument, nullptr, opt_bytes},
        {"timeout", required_argument, nullptr, opt_timeout},
        {"no-resume", no_argument, nullptr, opt_no_resume},
        {"no-verify", no_argument, nullptr, opt_no_verify},
        {"id", required_argument, nullptr, opt_id},
        {"quiet", no_argument, nullptr, 'q'},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    const std::string c = cmd;
    const std::string prog = "peerdex " + c;
    const char* shorts = c == "upload" ? "H:p:n:qvh" : c == "download" ? "H:p:d:qvh" : "H:p:qvh";
    int ch;
    while ((ch = getopt_long(argc, argv, shorts, longs, nullptr)) != -1) {
        switch (ch) {
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = number_option(prog.c_str(), "port", optarg, 1, 65535);
            break;
        case 'n':
        case 'd':
            if (*optarg == '\0') {
                std::fprintf(stderr, "%s: -%c needs a %s, not an empty string\n", prog.c_str(), ch,
                             ch == 'n' ? "file name" : "path");
                return 2;
            }
            o.extra = optarg;
            break;
        case opt_bytes:
            if (c != "ls") {
                std::fprintf(stderr, "%s: --bytes is an option of 'peerdex ls' (try --help)\n", prog.c_str());
                return 2;
            }
            o.bytes = true;
            break;
        case opt_timeout:
            o.timeout_s = number_option(prog.c_str(), "--timeout", optarg, 1, 3600);
            break;
        case opt_no_resume:
        case opt_no_verify:
        case opt_id:
            if (c != "download") {
                std::fprintf(stderr, "%s: --%s is an option of 'peerdex download' (try --help)\n", prog.c_str(),
                             ch == opt_id ? "id" : ch == opt_no_resume ? "no-resume" : "no-verify");
                return 2;
            }
            if (ch == opt_no_resume) {
                o.resume = false;
                break;
            }
            if (ch == opt_no_verify) {
                o.verify = false;
                break;
            }
            {
                Digest root;
                if (!parse_content_id(optarg, root)) {
                    std::fprintf(stderr, "%s: --id '%s' is not a content id (sha256: and 64 hex digits)\n",
                                 prog.c_str(), optarg);
                    return 2;
                }
                o.id = content_id_text(root);
            }
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'h':
            client_usage(stdout, cmd);
            return 0;
        default:  // getopt has named the option
            std::fprintf(stderr, "Try '%s --help' for the options.\n", prog.c_str());
            return 2;
        }
    }
    if (!o.verify && !o.id.empty()) {
        std::fprintf(stderr, "%s: --id asks for the verification --no-verify turns off; choose one\n",
                     prog.c_str());
        return 2;
    }
    for (int i = optind; i < argc; ++i)
        o.args.emplace_back(argv[i]);
    const std::size_t wanted = c == "ls" ? 0 : 1;
    if (o.args.size() != wanted) {
        if (o.args.size() > wanted)
            std::fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", prog.c_str(),
                         o.args[wanted].c_str());
        else
            std::fprintf(stderr, "%s: which file? (%s; try --help)\n", prog.c_str(), c == "upload" ? "SRC" : "NAME");
        return 2;
    }
    return -1;
}

bool resolve(const ClientOptions& o, const char* cmd, sockaddr_storage& out)
{
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &res); rc != 0) {
        std::fprintf(stderr, "peerdex %s: cannot resolve '%s': %s\n", cmd, o.host.c_str(), gai_strerror(rc));
        return false;
    }
    std::memcpy(&out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (o.verbose)
        std::fprintf(stderr, "peerdex %s: connecting to %s\n", cmd,
                     endpoint_string(reinterpret_cast<const sockaddr*>(&out)).c_str());
    return true;
}

// Resolves the server, then runs the loop with what `start(loop, server, status)`
// queued on it; returns the status the exchange left (1 unless it set 0).
template <class Start>
int one_shot(const ClientOptions& o, const char* cmd, Start start)
{
    sockaddr_storage addr{};
    if (!resolve(o, cmd, addr))
        return 1;
    uv_loop_t* loop = uv_default_loop();
    int status = 1;
    start(loop, addr, status);
    uv_run(loop, UV_RUN_DEFAULT);
    return status;
}

bool show_progress(const ClientOptions& o)
{
    return !o.quiet && isatty(STDERR_FILENO);
}

void report_rate(const ClientOptions& o, const char* what, const std::string& name, std::uint64_t bytes,
                 std::uint64_t ms)
{
    if (o.verbose)
        std::fprintf(stderr, "peerdex: %s %s: %llu bytes in %.2f s (%s/s)\n", what, name.c_str(),
                     static_cast<unsigned long long>(bytes), static_cast<double>(ms) / 1000.0,
                     human_size(ms ? static_cast<double>(bytes) * 1000.0 / static_cast<double>(ms) : 0).c_str());
}

}  // namespace

int upload_main(int argc, char** argv)
{
    ClientOptions o;
    if (const int rc = parse_client(argc, argv, "upload", o); rc >= 0)
        return rc;
    const std::string src = o.args[0];
    const std::string name = o.extra.empty() ? base_name(src) : o.extra;
    if (!valid_file_name(name)) {
        std::fprintf(stderr, "peerdex upload: '%s' is not a file name a server accepts (one path component, no "
                             "control bytes, at most 255 bytes); choose one with -n\n",
                     name.c_str());
        return 2;
    }
    struct stat st {};
    const std::uint64_t size = ::stat(src.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    return one_shot(o, "upload", [&](uv_loop_t* loop, const sockaddr_storage& addr, int& status) {
        const std::uint64_t t0 = uv_now(loop);
        start_upload(loop, addr, src, name, o.timeout_s * 1000, show_progress(o),
                     [&, loop, t0](int code, const std::string& why) {
                         if (code == 0) {
                             status = 0;
                             report_rate(o, "uploaded", name, size, uv_now(loop) - t0);
                         } else {
                             std::fprintf(stderr, "peerdex upload: %s\n", why.c_str());
                         }
                     });
    });
}

int download_main(int argc, char** argv)
{
    ClientOptions o;
    if (const int rc = parse_client(argc, argv, "download", o); rc >= 0)
        return rc;
    const std::string name = o.args[0];
    std::string why;
    const std::string dst = Download::target(name, o.extra, why);
    if (dst.empty()) {
        std::fprintf(stderr, "peerdex download: %s\n", why.c_str());
        return 2;
    }
    // Ctrl-C, SIGTERM or a hang-up cancels the download: nothing of it remains.
    struct Interrupt {
        uv_signal_t handles[3]{};
        Download::State* download = nullptr;
        int signum = 0;

        void start(uv_loop_t* loop)
        {
            const int signums[3] = {SIGINT, SIGTERM, SIGHUP};
            for (int i = 0; i < 3; ++i) {
                uv_signal_init(loop, &handles[i]);
                handles[i].data = this;
                uv_signal_start(
                    &handles[i],
                    [](uv_signal_t* h, int sig) {
                        auto* self = static_cast<Interrupt*>(h->data);
                        if (self->signum == 0 && self->download) {
                            self->signum = sig;
                            Download::cancel(self->download);
                        }
                    },
                    signums[i]);
            }
        }
        void stop()
        {
            download = nullptr;
            for (auto& h : handles)
                uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
        }
    } interrupt;
    const int status = one_shot(o, "download", [&](uv_loop_t* loop, const sockaddr_storage& addr, int& result) {
        const std::uint64_t t0 = uv_now(loop);
        interrupt.start(loop);
        DownloadOptions d;
        d.stall_ms = o.timeout_s * 1000;
        d.progress = show_progress(o);
        d.resume = o.resume;
        d.verify = o.verify;
        d.expected_id = o.id;
        d.peer = "the server at " + endpoint_string(reinterpret_cast<const sockaddr*>(&addr));
        interrupt.download = Download::start(
            loop, addr, name, dst, std::move(d),
            [&, loop, t0](Download::Result r, const std::string& reason, const DownloadInfo& info) {
                interrupt.stop();
                if (r == Download::Result::ok) {
                    result = 0;
                    if (info.reused && !o.quiet)
                        std::fprintf(stderr, "peerdex download: resumed %s: %s of %s were already here, verified\n",
                                     dst.c_str(), human_size(static_cast<double>(info.reused)).c_str(),
                                     human_size(static_cast<double>(info.size)).c_str());
                    if (info.verified && o.verbose)
                        std::fprintf(stderr, "peerdex download: every byte of %s matches %s\n", dst.c_str(),
                                     info.id.c_str());
                    report_rate(o, "downloaded", name, info.size - info.reused, uv_now(loop) - t0);
                    return;
                }
                if (r == Download::Result::not_found)
                    std::fprintf(stderr, "peerdex download: the server has no file %s\n", name.c_str());
                else
                    std::fprintf(stderr, "peerdex download: %s\n",
                                 r == Download::Result::cancelled ? "interrupted" : reason.c_str());
                if (info.kept)
                    std::fprintf(stderr,
                                 "peerdex download: the %s verified so far are kept: the same command resumes\n",
                                 human_size(static_cast<double>(info.kept)).c_str());
                else if (r == Download::Result::cancelled)
                    std::fprintf(stderr, "peerdex download: nothing was kept\n");
            });
    });
    return interrupt.signum ? 128 + interrupt.signum : status;
}

int ls_main(int argc, char** argv)
{
    ClientOptions o;
    if (const int rc = parse_client(argc, argv, "ls", o); rc >= 0)
        return rc;
    const int status = one_shot(o, "ls", [&](uv_loop_t* loop, const sockaddr_storage& addr, int& result) {
        start_list(loop, addr, o.timeout_s * 1000,
                   [&](int code, std::vector<FileEntry> files, const std::string& why) {
                       if (code != 0) {
                           std::fprintf(stderr, "peerdex ls: %s\n", why.c_str());
                           return;
                       }
                       result = 0;
                       const std::string table = format_listing(files, o.bytes);
                       std::fwrite(table.data(), 1, table.size(), stdout);
                       if (o.verbose)
                           std::fprintf(stderr, "peerdex ls: %zu file%s\n", files.size(), files.size() == 1 ? "" : "s");
                   });
    });
    if (std::fflush(stdout) != 0) {
        std::fprintf(stderr, "peerdex ls: cannot write the listing: %s\n", std::strerror(errno));
        return 1;
    }
    return status;
}

}  // namespace peerdex
