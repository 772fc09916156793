#include "prober.hh"

#include <algorithm>
#include <memory>
#include <utility>

#include "console.hh"

namespace peerdex {

namespace {

// Users asked of the store at a time: a round's queue never holds more.
constexpr std::size_t kWalkChunk = 256;

// Errors of this machine, not of the peer: such a probe does not count either way.
bool local_error(int status)
{
    switch (status) {
    case UV_EMFILE:
    case UV_ENFILE:
    case UV_ENOBUFS:
    case UV_ENOMEM:
    case UV_EADDRNOTAVAIL:
    case UV_EAGAIN:
        return true;
    default:
        return false;
    }
}

// Takes the users of the walk's answer into the round's queue.
class QueueSink final : public ListSink {
public:
    explicit QueueSink(std::deque<UserEndpoint>& queue) : queue_(queue) {}
    void user(std::string_view name, const Address& ip, std::uint16_t port) override
    {
        queue_.push_back({std::string(name), ip, port});
    }
    void content(std::string_view, std::string_view, const ContentMeta&) override {}
    void hit(std::string_view, const Address&, std::uint16_t, std::string_view, std::string_view,
             const ContentMeta&) override {}
    void source(std::string_view, const Address&, std::uint16_t, std::string_view, std::uint64_t) override {}
    bool full() const override { return false; }

private:
    std::deque<UserEndpoint>& queue_;
};

}  // namespace

struct Prober::Probe {
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    uv_timer_t timer{};
    Prober* owner = nullptr;  // null once the prober has stopped
    UserEndpoint target;
    int open_handles = 0;
    bool settled = false;

    // Closes both handles; the probe frees itself after the second close.
    void close()
    {
        settled = true;
        uv_timer_stop(&timer);
        const auto closed = [](uv_handle_t* h) {
            auto* p = static_cast<Probe*>(h->data);
            if (--p->open_handles == 0)
                delete p;
        };
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), closed);
    }
};

Prober::Prober(uv_loop_t* loop, Store& store, ProbeOptions options, Expired expired)
    : loop_(loop),
      store_(store),
      options_(options),
      expired_(std::move(expired)),
      timer_(std::make_unique<uv_timer_t>().release())
{
    uv_timer_init(loop_, timer_);
    timer_->data = this;
}

Prober::~Prober()
{
    stop();
}

void Prober::start()
{
    if (options_.interval_ms == 0 || !timer_)
        return;
    stopped_ = false;
    begin_round();
    pump();
}

void Prober::stop()
{
    stopped_ = true;
    if (timer_)
        uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(timer_, nullptr)),
                 [](uv_handle_t* h) { std::unique_ptr<uv_timer_t> gone(reinterpret_cast<uv_timer_t*>(h)); });
    for (Probe* p : live_) {
        p->owner = nullptr;
        p->close();
    }
    live_.clear();
    inflight_ = 0;
    queue_.clear();
    walking_.reset();
}

void Prober::arm(std::uint64_t delay_ms)
{
    uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<Prober*>(t->data)->pump(); }, delay_ms, 0);
}

void Prober::begin_round()
{
    ++round_;
    round_start_ = uv_now(loop_);
    walk_done_ = false;
    between_rounds_ = false;
}

void Prober::end_round()
{
    ++counters_.rounds;
    // A user failing in an older round and not probed since has left (or reconnected and
    // answered): its count goes, so that the table stays as small as the connected users.
    for (auto it = failing_.begin(); it != failing_.end();)
        it = it->second.round + 1 < round_ ? failing_.erase(it) : std::next(it);
    between_rounds_ = true;
    next_round_at_ = round_start_ + options_.interval_ms;
}

void Prober::pump()
{
    if (stopped_ || pumping_)
        return;
    pumping_ = true;
    for (;;) {
        const std::uint64_t now = uv_now(loop_);
        if (between_rounds_) {
            if (now < next_round_at_) {
                arm(next_round_at_ - now);
                break;
            }
            begin_round();
        }
        if (queue_.empty()) {
            if (walk_done_) {
                end_round();
                continue;
            }
            if (!fetching_)
                fetch();
            if (queue_.empty() && !walk_done_)
                break;  // the store answers later: on_walk() comes back here
            continue;
        }
        if (inflight_ >= options_.max_inflight)
            break;  // a probe that finishes comes back here
        if (next_due_ > static_cast<double>(now)) {
            arm(static_cast<std::uint64_t>(next_due_ - static_cast<double>(now)) + 1);
            break;
        }
        // Evenly spread over the interval, as the connected count now is, within the rate.
        const double connected = static_cast<double>(std::max<std::size_t>(store_.counts().connected, 1));
        const double spacing = std::max(static_cast<double>(options_.interval_ms) / connected,
                                        1000.0 / static_cast<double>(options_.rate));
        // Late by at most one millisecond of catching up: the rate holds after a stall.
        next_due_ = std::max(next_due_, static_cast<double>(now) - 1.0) + spacing;
        UserEndpoint target = std::move(queue_.front());
        queue_.pop_front();
        launch(std::move(target));
    }
    pumping_ = false;
}

void Prober::fetch()
{
    fetching_ = true;
    store_.walk_connected(kWalkChunk, Completion(&Prober::on_walk, this, 0));
}

void Prober::on_walk(void* ctx, std::uint64_t, StoreReply&& reply)
{
    auto* self = static_cast<Prober*>(ctx);
    if (self->stopped_)
        return;
    if (reply.outcome != Outcome::ok || !reply.list) {
        // The store could not walk (a shared store unreachable): try again next round.
        self->fetching_ = false;
        self->walk_done_ = true;
        self->pump();
        return;
    }
    self->walk_short_ = reply.list->count() < kWalkChunk;
    self->walking_ = std::move(reply.list);
    self->drain_walk();
}

void Prober::drain_walk()
{
    QueueSink sink(queue_);
    for (;;) {
        const Wakeup ready{[](void* ctx, std::uint64_t) {
                               auto* self = static_cast<Prober*>(ctx);
                               if (!self->stopped_ && self->walking_)
                                   self->drain_walk();
                           },
                           this, 0};
        switch (walking_->pull(sink, ready)) {
        case ListStream::Pull::more:
            continue;
        case ListStream::Pull::later:
            return;
        case ListStream::Pull::end:
        case ListStream::Pull::failed:
            break;
        }
        break;
    }
    walking_.reset();
    fetching_ = false;
    walk_done_ = walk_short_;
    pump();
}

void Prober::launch(UserEndpoint&& target)
{
    sockaddr_storage sa{};
    if (!target.ip.to_sockaddr(target.port, sa)) {
        ++counters_.local_errors;
        return;
    }
    auto* p = new Probe;
    p->owner = this;
    p->target = std::move(target);
    uv_tcp_init(loop_, &p->tcp);
    uv_timer_init(loop_, &p->timer);
    p->tcp.data = p->timer.data = p->connect.data = p;
    p->open_handles = 2;
    ++inflight_;
    ++counters_.probes;
    live_.push_back(p);
    const int rc = uv_tcp_connect(&p->connect, &p->tcp, reinterpret_cast<const sockaddr*>(&sa),
                                  [](uv_connect_t* req, int status) {
                                      auto* probe = static_cast<Probe*>(req->data);
                                      if (!probe->settled && probe->owner)
                                          probe->owner->finished(*probe, status);
                                  });
    if (rc != 0) {
        finished(*p, rc);
        return;
    }
    uv_timer_start(
        &p->timer,
        [](uv_timer_t* t) {
            auto* probe = static_cast<Probe*>(t->data);
            if (!probe->settled && probe->owner)
                probe->owner->finished(*probe, UV_ETIMEDOUT);
        },
        options_.timeout_ms, 0);
}

void Prober::finished(Probe& probe, int status)
{
    UserEndpoint target = std::move(probe.target);
    live_.erase(std::find(live_.begin(), live_.end(), &probe));
    probe.owner = nullptr;
    probe.close();  // accepted: closed without a byte sent
    --inflight_;
    if (status == 0) {
        ++counters_.ok;
        failing_.erase(target.name);
    } else if (local_error(status)) {
        ++counters_.local_errors;
        Console::debug("s> probe of %s: %s (not counted: a shortage on this machine)", target.name.c_str(),
                       uv_strerror(status));
    } else {
        failed(target);
    }
    pump();
}

void Prober::failed(const UserEndpoint& target)
{
    ++counters_.failed;
    Failing& f = failing_[target.name];
    if (f.count == 0 || f.ip != target.ip || f.port != target.port)
        f = Failing{target.ip, target.port, 0, round_};  // another endpoint: counting starts over
    ++f.count;
    f.round = round_;
    if (f.count < options_.failures)
        return;
    failing_.erase(target.name);
    const std::uint64_t token = ++next_token_;
    expiring_.emplace(token, target.name);
    store_.expire(target.name, target.ip, target.port, Completion(&Prober::on_expire, this, token));
}

void Prober::on_expire(void* ctx, std::uint64_t token, StoreReply&& reply)
{
    auto* self = static_cast<Prober*>(ctx);
    auto it = self->expiring_.find(token);
    if (it == self->expiring_.end())
        return;
    const std::string user = std::move(it->second);
    self->expiring_.erase(it);
    // Not connected there any more (a DISCONNECT or a new CONNECT came first): nothing to do.
    if (reply.outcome != Outcome::ok)
        return;
    ++self->counters_.expired;
    self->expired_(user);
}

}  // namespace peerdex
