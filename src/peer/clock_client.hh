// Fetches the timestamp of every tracker operation from peerdex-clock (peerdex-protocol(7),
// DATE-TIME SERVICE) on the client's loop: libcurl's multi-socket interface driven by libuv
// polls and a timer, so the peer listener never waits for the clock. A clock that cannot be
// reached, or answers anything but a timestamp, is replaced by the local clock in the same
// format, with one warning; the operation never fails for it. A build without libcurl
// (-Dcurl=disabled: clock_local.cc in place of clock_client.cc) has the local clock only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

typedef void CURLM;

namespace peerdex {

// --clock local: timestamps from this machine's clock, no service asked.
inline constexpr std::string_view kLocalClock = "local";
// The default --clock: the service on this machine, or the local clock without libcurl.
const char* default_clock();
// False in a build without libcurl: --clock then takes only none or local.
bool clock_urls_supported();

class ClockClient {
public:
    using Done = std::function<void(const std::string& ts)>;

    // url empty: no clock (course "part 1"): fetch() gives an empty timestamp; kLocalClock:
    // this machine's clock.
    ClockClient(uv_loop_t* loop, std::string url, std::uint64_t timeout_ms, bool quiet);
    ClockClient(const ClockClient&) = delete;
    ClockClient& operator=(const ClockClient&) = delete;
    ~ClockClient();

    void fetch(Done done);
    void close();
    bool enabled() const { return !url_.empty(); }

    struct Request;

private:
    static int on_socket(void* easy, int fd, int what, void* self, void* poll);
    static int on_timer(CURLM* multi, long timeout_ms, void* self);
    void drive(int fd, int events);
    void collect();
    void fallback(const std::string& why, const Done& done);

    uv_loop_t* loop_;
    std::string url_;
    std::uint64_t timeout_ms_;
    bool quiet_;
    CURLM* multi_ = nullptr;
    uv_timer_t timer_{};
    bool warned_ = false;
    std::uint64_t skip_until_ = 0;  // after a failure, the local clock for a while
    bool closed_ = false;
};

}  // namespace peerdex
