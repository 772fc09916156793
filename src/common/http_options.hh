// The daemons' --http, --http-allow and --http-token-file (peerdex-tracker(8), HTTP): read
// and checked here, in every build, so that a build without the HTTP side refuses them with
// the same words everywhere; served by http_server.hh.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "address.hh"

namespace peerdex {

// Whether this program has its HTTP side: -Dhttp gives the tracker and the log server
// PEERDEX_HAVE_HTTP. Internal linkage: each program's main.cc sees its own build's answer.
#ifdef PEERDEX_HAVE_HTTP
constexpr bool kHttpBuilt = true;
#else
constexpr bool kHttpBuilt = false;
#endif

// The three options as the command line gave them.
struct HttpFlags {
    std::string spec, token_file;
    std::vector<std::string> allow;
    bool given() const { return !spec.empty() || !allow.empty() || !token_file.empty(); }
};

// What they mean.
struct HttpOptions {
    std::string addr = "127.0.0.1";  // where to listen
    std::uint16_t port = 0;
    std::vector<Subnet> allow;       // besides loopback, who may connect
    std::string token;               // when set, /metrics wants "Authorization: Bearer TOKEN"
};

// "[ADDR:]PORT" ("9100", "127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100") into options.
bool parse_http_listen(std::string_view spec, HttpOptions& out, std::string& error);
// --http-allow ADDR[/PREFIX]: one more block allowed besides loopback.
bool add_http_allow(std::string_view spec, HttpOptions& out, std::string& error);
// --http-token-file: the first line of FILE, which must be readable by its owner only.
bool read_http_token(const std::string& path, std::string& token, std::string& error);
// The flags checked together into `out` (the last two need the first); `built`: whether the
// program has its HTTP side (without it, any of them is refused). False after printing
// "<program>: why" on standard error: the program then exits 2.
bool http_options_from(const char* program, const HttpFlags& flags, bool built, HttpOptions& out);

}  // namespace peerdex
