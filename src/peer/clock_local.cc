// ClockClient in a build without libcurl (-Dcurl=disabled): no date-time service is asked;
// a timestamp comes from this machine's clock, in the service's format, or is empty with
// --clock none.
#include <ctime>

#include "clock_client.hh"
#include "datetime.hh"

namespace peerdex {

const char* default_clock()
{
    return "local";
}

bool clock_urls_supported()
{
    return false;
}

ClockClient::ClockClient(uv_loop_t* loop, std::string url, std::uint64_t timeout_ms, bool quiet)
    : loop_(loop), url_(std::move(url)), timeout_ms_(timeout_ms), quiet_(quiet)
{
}

ClockClient::~ClockClient() = default;

void ClockClient::fetch(Done done)
{
    done(url_.empty() ? std::string() : course_timestamp(std::time(nullptr)));
}

void ClockClient::close()
{
    closed_ = true;
}

}  // namespace peerdex
