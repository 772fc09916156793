#include "datetime.hh"

#include <cstdio>
#include <cstdlib>

namespace peerdex {

std::string course_timestamp(std::time_t t)
{
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%d/%m/%Y %H:%M:%S", &tm);
    return buf;
}

std::string iso8601_timestamp(std::time_t t)
{
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    const long off = tm.tm_gmtoff;
    const long a = off < 0 ? -off : off;
    char zone[48];  // room for any long, although offsets stay within a day
    std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", off < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
    return std::string(buf) + zone;
}

namespace {

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool iequal(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

// The q-value the header gives `type/sub`, from its most specific matching range
// (exact, then type/*, then */*); -1 when nothing matches.
double quality(std::string_view accept, std::string_view type, std::string_view sub)
{
    double best = -1;
    int best_specificity = -1;
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        std::string_view item = trim(accept.substr(0, comma));
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        const auto semi = item.find(';');
        const std::string_view range = trim(item.substr(0, semi));
        double q = 1;
        if (semi != std::string_view::npos) {
            std::string_view params = item.substr(semi + 1);
            const auto qpos = params.find("q=");
            if (qpos != std::string_view::npos) {
                char buf[16] = {};
                const std::string_view v = trim(params.substr(qpos + 2, 5));
                v.copy(buf, std::min<std::size_t>(v.size(), sizeof buf - 1));
                q = std::strtod(buf, nullptr);
            }
        }
        const auto slash = range.find('/');
        if (slash == std::string_view::npos)
            continue;
        const std::string_view rt = range.substr(0, slash), rs = range.substr(slash + 1);
        int specificity = -1;
        if (iequal(rt, type) && iequal(rs, sub))
            specificity = 2;
        else if (iequal(rt, type) && rs == "*")
            specificity = 1;
        else if (rt == "*" && rs == "*")
            specificity = 0;
        if (specificity > best_specificity) {
            best_specificity = specificity;
            best = q;
        }
    }
    return best;
}

}  // namespace

bool prefers_json(std::string_view accept)
{
    const double json = quality(accept, "application", "json");
    const double text = quality(accept, "text", "plain");
    return json > 0 && json > text;
}

}  // namespace peerdex
