#include "exchange.hh"

#include <algorithm>
#include <memory>

namespace peerdex {

namespace {
constexpr std::uint64_t kTickMs = 200;
}  // namespace

Exchange::Exchange(uv_loop_t* l, std::uint64_t limit, const char* other_side) : loop(l), who(other_side), limit_ms(limit)
{
    uv_tcp_init(loop, &tcp);
    uv_timer_init(loop, &timer);
    tcp.data = timer.data = connect.data = request_write.data = this;
    started = last_progress = uv_now(loop);
}

uv_buf_t Exchange::buffer()
{
    static char in[64 * 1024];  // one loop thread
    return uv_buf_init(in, sizeof in);
}

void Exchange::go(const sockaddr_storage& to)
{
    uv_timer_start(&timer, [](uv_timer_t* t) {
        auto* x = static_cast<Exchange*>(t->data);
        const std::uint64_t limit = x->got_byte ? x->limit_ms : std::max(x->limit_ms, x->first_byte_ms);
        if (uv_now(x->loop) - x->last_progress >= limit)
            x->stalled();
        else
            x->tick();
    }, kTickMs, kTickMs);
    const int rc = uv_tcp_connect(&connect, &tcp, reinterpret_cast<const sockaddr*>(&to),
                                  [](uv_connect_t* req, int status) {
        auto* x = static_cast<Exchange*>(req->data);
        if (x->finished)
            return;
        if (status != 0) {
            x->finish(-1, std::string("cannot connect to ") + x->who + ": " + uv_strerror(status));
            return;
        }
        x->last_progress = uv_now(x->loop);
        uv_buf_t b = uv_buf_init(x->request.data(), static_cast<unsigned>(x->request.size()));
        uv_write(&x->request_write, x->stream(), &b, 1, nullptr);
        x->set_reading(true);
        x->connected();
    });
    if (rc != 0)
        finish(-1, std::string("cannot connect to ") + who + ": " + uv_strerror(rc));
}

void Exchange::set_reading(bool on)
{
    if (on == reading || finished)
        return;
    reading = on;
    if (!on) {
        uv_read_stop(stream());
        return;
    }
    uv_read_start(
        stream(), [](uv_handle_t* h, std::size_t, uv_buf_t* b) { *b = static_cast<Exchange*>(h->data)->buffer(); },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
            auto* x = static_cast<Exchange*>(s->data);
            if (x->finished)
                return;
            if (n == UV_EOF) {
                x->closed();
                return;
            }
            if (n < 0) {
                x->finish(-1, std::string("connection to ") + x->who + ": " + uv_strerror(static_cast<int>(n)));
                return;
            }
            x->last_progress = uv_now(x->loop);
            x->got_byte = true;
            x->received(b->base, b->base + n);
        });
}

void Exchange::received(const char* p, const char* end)
{
    switch (reply.feed(p, end)) {
    case ReplyDecoder::Status::need_more:
        return;
    case ReplyDecoder::Status::error:
        finish(-1, std::string("malformed reply from ") + who + ": " + reply.error());
        return;
    case ReplyDecoder::Status::done:
        replied();
        return;
    }
}

void Exchange::closed()
{
    if (reply.eof() == ReplyDecoder::Status::done)
        replied();
    else
        finish(-1, std::string(who) + " closed the connection without a complete reply");
}

void Exchange::stalled()
{
    const std::uint64_t limit = got_byte ? limit_ms : std::max(limit_ms, first_byte_ms);
    finish(-1, std::string(who) + " stalled: no byte moved for " + std::to_string(limit / 1000) + " s");
}

void Exchange::finish(int c, const std::string& reason)
{
    if (finished)
        return;
    finished = true;
    code = c;
    why = reason;
    if (reading)
        uv_read_stop(stream());
    reading = false;
    auto on_close = [](uv_handle_t* h) {
        auto* x = static_cast<Exchange*>(h->data);
        --x->handles;
        x->maybe_done();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_close);
}

void Exchange::on_pool(std::function<void()> work, std::function<void()> after)
{
    struct Job {
        uv_work_t req{};
        Exchange* x;
        std::function<void()> work, after;
    };
    auto* job = new Job{{}, this, std::move(work), std::move(after)};  // freed after `after`
    job->req.data = job;
    ++busy;
    uv_queue_work(
        loop, &job->req, [](uv_work_t* w) { static_cast<Job*>(w->data)->work(); },
        [](uv_work_t* w, int) {
            std::unique_ptr<Job> j(static_cast<Job*>(w->data));
            --j->x->busy;
            j->after();
        });
}

void Exchange::maybe_done()
{
    if (handles == 0 && busy == 0)
        done();  // may delete this
}

}  // namespace peerdex
