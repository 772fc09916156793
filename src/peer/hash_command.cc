// `peerdex hash FILE...`: the content id of each file (peerdex(1), peerdex-protocol(7),
// CONTENT IDS), from the client's cache of trees when the file is unchanged since it was
// last hashed.
#include <getopt.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "cli.hh"
#include "content_tree.hh"
#include "subcommands.hh"

namespace peerdex {
namespace {

void hash_usage(FILE* out)
{
    std::fprintf(out,
                 "usage: peerdex hash [--no-cache] FILE...\n"
                 "Prints each file's content id, its size and its name. Trees are kept in\n"
                 "$XDG_CACHE_HOME/peerdex/trees (else ~/.cache/peerdex/trees), so an unchanged file\n"
                 "is not read again.\n"
                 "      --no-cache   hash every file, and neither read nor write the cache\n"
                 "  -h, --help       show this help\n");
}

}  // namespace

int hash_main(int argc, char** argv)
{
    enum { opt_no_cache = 256 };
    static const option longs[] = {
        {"no-cache", no_argument, nullptr, opt_no_cache},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    bool use_cache = true;
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, nullptr)) != -1) {
        if (c == opt_no_cache)
            use_cache = false;
        else
            other_option(c, "peerdex hash", hash_usage);
    }
    if (optind == argc) {
        std::fprintf(stderr, "peerdex hash: name at least one file\n");
        hash_usage(stderr);
        return 2;
    }
    const std::string dir = use_cache ? tree_cache_dir() : std::string();
    const bool terminal = ::isatty(2);
    int status = 0;
    for (int i = optind; i < argc; ++i) {
        const std::string path = argv[i];
        ContentTree tree;
        bool cached = false;
        std::string error;
        // A progress line on a terminal, for files that take a while.
        const auto progress = [&](std::uint64_t done) {
            if (terminal && tree.size >= (64u << 20))
                std::fprintf(stderr, "\rpeerdex hash: %s %3u%%", path.c_str(),
                             static_cast<unsigned>(done * 100 / tree.size));
            return true;
        };
        const HashResult r = tree_of(path, dir, tree, cached, error, progress);
        if (terminal && tree.size >= (64u << 20) && !cached)
            std::fprintf(stderr, "\r\033[K");
        if (r != HashResult::ok) {
            std::fprintf(stderr, "peerdex hash: %s: %s\n", path.c_str(), error.c_str());
            status = 1;
            continue;
        }
        std::printf("%s %" PRIu64 " %s\n", content_id_text(tree.root).c_str(), tree.size, path.c_str());
    }
    if (std::fflush(stdout) != 0)
        return 1;
    return status;
}

}  // namespace peerdex
