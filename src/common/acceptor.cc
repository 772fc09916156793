#include "acceptor.hh"

#include <algorithm>
#include <memory>
#include <utility>

#include "console.hh"
#include "listen.hh"

namespace peerdex {

Acceptor::Acceptor(uv_loop_t* loop, const char* program, AcceptorLimits limits, std::function<Accepted*()> make)
    : loop_(loop),
      program_(program),
      limits_(limits),
      make_(std::move(make)),
      idle_(limits.idle_ms),
      linger_(limits.linger_ms)
{
}

Acceptor::~Acceptor() = default;

int Acceptor::listen(const std::string& addr, std::uint16_t port, const char* program, sockaddr_storage& bound)
{
    auto tcp = std::make_unique<uv_tcp_t>();
    tcp->data = this;
    const int rc = listen_tcp(loop_, tcp.get(), addr, port, limits_.backlog, on_connection, program, bound);
    if (rc != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(tcp.release()),
                 [](uv_handle_t* h) { std::unique_ptr<uv_tcp_t> gone(reinterpret_cast<uv_tcp_t*>(h)); });
        return rc;
    }
    tcp->data = this;
    listener_ = tcp.release();
    accept_pending_ = false;  // a client parked on a previous listener is gone with it
    draining_ = false;
    if (!timer_) {
        timer_ = std::make_unique<uv_timer_t>().release();  // freed in its close callback
        uv_timer_init(loop_, timer_);
        timer_->data = this;
        uv_timer_start(timer_, on_timer, limits_.sweep_ms, limits_.sweep_ms);
    }
    return 0;
}

void Acceptor::close_listener()
{
    if (!listener_)
        return;
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(listener_, nullptr)),
             [](uv_handle_t* h) { std::unique_ptr<uv_tcp_t> gone(reinterpret_cast<uv_tcp_t*>(h)); });
    accept_pending_ = false;
}

void Acceptor::on_connection(uv_stream_t* server, int status)
{
    auto* self = static_cast<Acceptor*>(server->data);
    if (status < 0) {
        // libuv already shed the pending connections for EMFILE/ENFILE; say it once.
        if (!self->emfile_reported_)
            Console::error("%s: accept failed: %s (raise the file descriptor limit or lower the connection limit)",
                           self->program_, uv_strerror(status));
        self->emfile_reported_ = true;
        return;
    }
    if (self->open_ >= self->limits_.max_conns) {
        // Not accepting makes libuv stop polling the listener until we accept again.
        self->accept_pending_ = true;
        return;
    }
    self->accept_one();
}

void Acceptor::accept_one()
{
    Accepted* c = make_();
    if (!c)
        return;
    if (const int rc = uv_tcp_init(loop_, c->tcp()); rc != 0) {
        Console::error("%s: cannot create a connection handle: %s", program_, uv_strerror(rc));
        std::unique_ptr<Accepted> never_opened(c);
        return;
    }
    c->next_ = head_;
    if (head_)
        head_->prev_ = c;
    head_ = c;
    ++open_;
    if (const int rc = uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(c->tcp()));
        rc != 0) {
        Console::debug("%s: accept: %s", program_, uv_strerror(rc));
        c->close();
        return;
    }
    touch(c);
    c->start();
}

void Acceptor::closed(Accepted* c)
{
    DeadlineList<Accepted>::unlink(c);
    (c->prev_ ? c->prev_->next_ : head_) = c->next_;
    if (c->next_)
        c->next_->prev_ = c->prev_;
    c->prev_ = c->next_ = nullptr;
    --open_;
    if (draining_) {
        finish_if_done();
        return;
    }
    if (accept_pending_ && listener_ && open_ < limits_.max_conns) {
        accept_pending_ = false;
        accept_one();
    }
}

void Acceptor::on_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Acceptor*>(timer->data);
    self->sweep(uv_now(self->loop_));
}

void Acceptor::sweep(std::uint64_t now)
{
    while (Accepted* c = idle_.expired(now))
        c->expire();
    while (Accepted* c = linger_.expired(now))
        c->expire();
    if (sweep_hook_)
        sweep_hook_(now);
    if (draining_ && now >= drain_deadline_)
        cut_all();
}

void Acceptor::drain(std::uint64_t grace_ms, std::function<void()> done)
{
    close_listener();
    drained_ = std::move(done);
    draining_ = true;
    drain_deadline_ = uv_now(loop_) + grace_ms;
    if (grace_ms == 0) {
        cut_all();
    } else {
        // A connection may close (and leave the list) as it is asked: walk a step ahead.
        for (Accepted* c = head_; c;) {
            Accepted* next = c->next_;
            c->drain();
            c = next;
        }
        if (timer_)  // the deadline is checked every sweep; sweep often enough for it
            uv_timer_start(timer_, on_timer, std::min(limits_.sweep_ms, grace_ms), std::min(limits_.sweep_ms, grace_ms));
    }
    finish_if_done();
}

void Acceptor::cut_all()
{
    for (Accepted* c = head_; c;) {
        Accepted* next = c->next_;
        c->close();  // leaves the list when its handle has closed
        c = next;
    }
}

void Acceptor::finish_if_done()
{
    if (!draining_ || open_ > 0)
        return;
    draining_ = false;
    if (timer_)
        uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(timer_, nullptr)),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t> gone(reinterpret_cast<uv_timer_t*>(h)); });
    if (auto done = std::move(drained_))
        done();
}

}  // namespace peerdex
