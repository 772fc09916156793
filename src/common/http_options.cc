#include "http_options.hh"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "wire.hh"

namespace peerdex {

bool parse_http_listen(std::string_view spec, HttpOptions& out, std::string& error)
{
    std::string addr = "127.0.0.1";
    std::string_view port = spec;
    if (!spec.empty() && spec.front() == '[') {
        const auto close = spec.find("]:");
        if (close == std::string_view::npos) {
            error = "--http: '" + std::string(spec) + "' is not [ADDR:]PORT (an IPv6 address goes in brackets: [::1]:9100)";
            return false;
        }
        addr.assign(spec.substr(1, close - 1));
        port = spec.substr(close + 2);
    } else if (const auto colon = spec.rfind(':'); colon != std::string_view::npos) {
        addr.assign(spec.substr(0, colon));
        port = spec.substr(colon + 1);
    }
    const std::optional<std::uint64_t> n = parse_decimal(port, 65535);
    if (!n) {
        error = "--http: '" + std::string(spec) + "' is not [ADDR:]PORT (PORT 0 to 65535; 0 picks a free one)";
        return false;
    }
    Address a;
    if (!Address::parse(addr, a)) {
        error = "--http: '" + addr + "' is not a numeric IPv4 or IPv6 address";
        return false;
    }
    out.addr = addr;
    out.port = static_cast<std::uint16_t>(*n);
    return true;
}

bool add_http_allow(std::string_view spec, HttpOptions& out, std::string& error)
{
    Subnet s;
    if (!Subnet::parse(std::string(spec), s)) {
        error = "--http-allow: '" + std::string(spec) + "' is not ADDR or ADDR/PREFIX (e.g. 10.0.0.0/8, fd00::/8)";
        return false;
    }
    out.allow.push_back(s);
    return true;
}

namespace {

bool check_flags(const HttpFlags& flags, HttpOptions& out, std::string& error)
{
    const std::string& spec = flags.spec;
    const std::string& token_file = flags.token_file;
    const std::vector<std::string>& allow = flags.allow;
    if (spec.empty() && (!allow.empty() || !token_file.empty())) {
        error = "--http-allow and --http-token-file need --http [ADDR:]PORT";
        return false;
    }
    if (!spec.empty() && !parse_http_listen(spec, out, error))
        return false;
    for (const std::string& a : allow)
        if (!add_http_allow(a, out, error))
            return false;
    return token_file.empty() || read_http_token(token_file, out.token, error);
}

}  // namespace

bool read_http_token(const std::string& path, std::string& token, std::string& error)
{
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        error = "--http-token-file: cannot read " + path + ": " + std::strerror(errno);
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        error = "--http-token-file: " + path + " is readable by others: chmod 600 it";
        return false;
    }
    // stdio, not <fstream>: iostreams would bring the C++ locale machinery (half a MiB of
    // code in a tracker linked with -Dstatic_cxx_runtime) for one line.
    std::FILE* in = std::fopen(path.c_str(), "re");
    char buf[300];  // longer than any token allowed, so a longer line is seen as too long
    const std::size_t n = in ? std::fread(buf, 1, sizeof buf, in) : 0;
    if (in)
        std::fclose(in);
    std::string line(buf, n);
    line.resize(std::min(line.size(), line.find('\n')));
    if (n == 0) {
        error = "--http-token-file: cannot read a line from " + path;
        return false;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
    if (line.size() < 16 || line.size() > 256) {
        error = "--http-token-file: the token in " + path + " must be 16 to 256 characters";
        return false;
    }
    for (char c : line) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
            error = "--http-token-file: the token in " + path + " must be printable, without spaces";
            return false;
        }
    }
    token = line;
    return true;
}

bool http_options_from(const char* program, const HttpFlags& flags, bool built, HttpOptions& out)
{
    if (!built && flags.given()) {
        std::fprintf(stderr, "%s: --http: this %s was built without its HTTP side (meson setup -Dhttp=enabled, with "
                             "libmicrohttpd)\n", program, program);
        return false;
    }
    std::string error;
    if (!check_flags(flags, out, error)) {
        std::fprintf(stderr, "%s: %s\n", program, error.c_str());
        return false;
    }
    return true;
}

}  // namespace peerdex
