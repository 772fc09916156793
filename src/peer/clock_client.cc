#include "clock_client.hh"

#include <curl/curl.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "datetime.hh"
#include "wire.hh"

namespace peerdex {

namespace {
// After the clock failed, ask it again only after this long: a dead clock must not add
// its timeout to every operation.
constexpr std::uint64_t kRetryAfterMs = 10000;
constexpr std::size_t kMaxBodyBytes = 256;

struct PollCtx {
    uv_poll_t poll{};
    ClockClient* owner;
    int fd;
};
}  // namespace

const char* default_clock()
{
    return "http://127.0.0.1:5000/datetime";
}

bool clock_urls_supported()
{
    return true;
}

struct ClockClient::Request {
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    std::string body;
    Done done;
};

ClockClient::ClockClient(uv_loop_t* loop, std::string url, std::uint64_t timeout_ms, bool quiet)
    : loop_(loop), url_(std::move(url)), timeout_ms_(timeout_ms), quiet_(quiet)
{
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    if (url_.empty() || url_ == kLocalClock)
        return;
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &ClockClient::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &ClockClient::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

ClockClient::~ClockClient() = default;

void ClockClient::close()
{
    if (closed_)
        return;
    closed_ = true;
    if (multi_) {
        curl_multi_cleanup(multi_);  // closes its sockets: CURL_POLL_REMOVE for each
        multi_ = nullptr;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void ClockClient::fallback(const std::string& why, const Done& done)
{
    if (!warned_ && !quiet_)
        std::fprintf(stderr, "peerdex: clock %s unavailable (%s); using the local clock\n", url_.c_str(), why.c_str());
    warned_ = true;
    skip_until_ = uv_now(loop_) + kRetryAfterMs;
    done(course_timestamp(std::time(nullptr)));
}

void ClockClient::fetch(Done done)
{
    if (url_.empty()) {
        done(std::string());
        return;
    }
    if (url_ == kLocalClock || uv_now(loop_) < skip_until_) {
        done(course_timestamp(std::time(nullptr)));
        return;
    }
    auto req = std::make_unique<Request>();
    req->done = std::move(done);
    req->easy = curl_easy_init();
    req->headers = curl_slist_append(nullptr, "Accept: text/plain");
    CURL* e = req->easy;
    curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, +[](char* p, size_t size, size_t n, void* user) -> size_t {
        auto* r = static_cast<Request*>(user);
        if (r->body.size() + size * n > kMaxBodyBytes)
            return 0;  // not a timestamp: abort the transfer
        r->body.append(p, size * n);
        return size * n;
    });
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, req.get());
    curl_multi_add_handle(multi_, e);
    req.release();  // owned by the transfer until collect()
}

int ClockClient::on_socket(void*, int fd, int what, void* self_ptr, void* poll_ptr)
{
    auto* self = static_cast<ClockClient*>(self_ptr);
    auto* ctx = static_cast<PollCtx*>(poll_ptr);
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            uv_poll_stop(&ctx->poll);
            uv_close(reinterpret_cast<uv_handle_t*>(&ctx->poll),
                     [](uv_handle_t* h) { std::unique_ptr<PollCtx> gone(static_cast<PollCtx*>(h->data)); });
            if (self->multi_)
                curl_multi_assign(self->multi_, fd, nullptr);
        }
        return 0;
    }
    if (!ctx) {
        auto owned = std::make_unique<PollCtx>();
        owned->owner = self;
        owned->fd = fd;
        uv_poll_init_socket(self->loop_, &owned->poll, fd);
        owned->poll.data = owned.get();
        ctx = owned.release();  // freed when curl removes the socket
        curl_multi_assign(self->multi_, fd, ctx);
    }
    const int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&ctx->poll, events, [](uv_poll_t* p, int status, int ev) {
        auto* c = static_cast<PollCtx*>(p->data);
        int flags = 0;
        if (status < 0)
            flags = CURL_CSELECT_ERR;
        if (ev & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (ev & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
        c->owner->drive(c->fd, flags);
    });
    return 0;
}

int ClockClient::on_timer(CURLM*, long timeout_ms, void* self_ptr)
{
    auto* self = static_cast<ClockClient*>(self_ptr);
    if (timeout_ms < 0) {
        uv_timer_stop(&self->timer_);
        return 0;
    }
    // 0 means "as soon as possible": on the next loop turn, never from inside curl.
    uv_timer_start(&self->timer_, [](uv_timer_t* t) {
        static_cast<ClockClient*>(t->data)->drive(CURL_SOCKET_TIMEOUT, 0);
    }, static_cast<std::uint64_t>(timeout_ms), 0);
    return 0;
}

void ClockClient::drive(int fd, int events)
{
    if (!multi_)
        return;
    int running = 0;
    curl_multi_socket_action(multi_, fd, events, &running);
    collect();
}

void ClockClient::collect()
{
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL* e = msg->easy_handle;
        const CURLcode result = msg->data.result;
        Request* raw = nullptr;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &raw);
        std::unique_ptr<Request> req(raw);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(multi_, e);
        curl_easy_cleanup(e);
        curl_slist_free_all(req->headers);
        if (result != CURLE_OK)
            fallback(curl_easy_strerror(result), req->done);
        else if (status != 200)
            fallback("HTTP status " + std::to_string(status), req->done);
        else if (!is_timestamp(req->body))
            fallback("its answer is not DD/MM/YYYY HH:MM:SS", req->done);
        else
            req->done(req->body);
    }
}

}  // namespace peerdex
