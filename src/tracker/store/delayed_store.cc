#include "delayed_store.hh"

#include <memory>
#include <utility>

namespace peerdex {

// Each chunk of the list is ready one loop turn after it is asked for.
class DelayedStore::Stream final : public ListStream {
public:
    Stream(DelayedStore& store, std::unique_ptr<ListStream> inner) : store_(store), inner_(std::move(inner)) {}
    std::size_t count() const override { return inner_->count(); }
    Pull pull(ListSink& sink, Wakeup ready) override
    {
        if (!asked_) {
            asked_ = true;
            store_.wakeups_.push_back(ready);
            store_.arm();
            return Pull::later;
        }
        asked_ = false;
        return inner_->pull(sink, ready);
    }

private:
    DelayedStore& store_;
    std::unique_ptr<ListStream> inner_;
    bool asked_ = false;
};

DelayedStore::DelayedStore(uv_loop_t* loop, AuthMode auth, std::size_t search_budget)
    : inner_(auth, search_budget), idle_(std::make_unique<uv_idle_t>().release())
{
    uv_idle_init(loop, idle_);
    idle_->data = this;
}

DelayedStore::~DelayedStore()
{
    if (idle_) {  // close() was not called: the loop is going away with us
        uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) {
            std::unique_ptr<uv_idle_t> drop(reinterpret_cast<uv_idle_t*>(h));
        });
    }
}

Completion DelayedStore::hold(Completion done)
{
    pending_.push_back({done, StoreReply{}});
    arm();
    return Completion(&DelayedStore::on_inner, this, pending_.size() - 1);
}

void DelayedStore::on_inner(void* ctx, std::uint64_t token, StoreReply&& reply)
{
    auto* self = static_cast<DelayedStore*>(ctx);
    if (reply.list)
        reply.list = std::make_unique<Stream>(*self, std::move(reply.list));
    self->pending_[static_cast<std::size_t>(token)].reply = std::move(reply);  // an index it gave
}

void DelayedStore::arm()
{
    if (idle_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_)))
        uv_idle_start(idle_, on_idle);
}

void DelayedStore::on_idle(uv_idle_t* idle)
{
    static_cast<DelayedStore*>(idle->data)->deliver();
}

void DelayedStore::deliver()
{
    // What is asked while answering waits for the next turn.
    std::vector<Pending> batch;
    batch.swap(pending_);
    std::vector<Wakeup> wakeups;
    wakeups.swap(wakeups_);
    for (auto it = batch.rbegin(); it != batch.rend(); ++it)
        it->done(std::move(it->reply));
    for (auto it = wakeups.rbegin(); it != wakeups.rend(); ++it)
        (*it)();
    if (pending_.empty() && wakeups_.empty() && idle_)
        uv_idle_stop(idle_);
}

void DelayedStore::close(void (*closed)(void* ctx), void* ctx)
{
    while (!pending_.empty() || !wakeups_.empty())
        deliver();
    closed_ = closed;
    closed_ctx_ = ctx;
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(idle_, nullptr)), [](uv_handle_t* h) {
        std::unique_ptr<uv_idle_t> idle(reinterpret_cast<uv_idle_t*>(h));
        auto* self = static_cast<DelayedStore*>(idle->data);
        self->closed_(self->closed_ctx_);
    });
}

void DelayedStore::register_user(std::string_view user, const Requester& by, Completion done)
{
    inner_.register_user(user, by, hold(done));
}

void DelayedStore::unregister_user(std::string_view user, const Requester& by, Completion done)
{
    inner_.unregister_user(user, by, hold(done));
}

void DelayedStore::connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done)
{
    inner_.connect(user, by, port, hold(done));
}

void DelayedStore::disconnect(std::string_view user, const Requester& by, Completion done)
{
    inner_.disconnect(user, by, hold(done));
}

void DelayedStore::publish(std::string_view user, const Requester& by, std::string_view path,
                           std::string_view description, const ContentMeta& meta, Completion done)
{
    inner_.publish(user, by, path, description, meta, hold(done));
}

void DelayedStore::remove(std::string_view user, const Requester& by, std::string_view path, Completion done)
{
    inner_.remove(user, by, path, hold(done));
}

void DelayedStore::owns(std::string_view user, const Requester& by, Completion done)
{
    inner_.owns(user, by, hold(done));
}

void DelayedStore::list_users(std::string_view requester, Completion done)
{
    inner_.list_users(requester, hold(done));
}

void DelayedStore::list_content(std::string_view requester, std::string_view target, Completion done)
{
    inner_.list_content(requester, target, hold(done));
}

void DelayedStore::get_user_info(std::string_view requester, std::string_view target, Completion done)
{
    inner_.get_user_info(requester, target, hold(done));
}

void DelayedStore::search(std::string_view requester, const SearchRequest& request, Completion done)
{
    inner_.search(requester, request, hold(done));
}

void DelayedStore::sources(std::string_view requester, const SourcesRequest& request, Completion done)
{
    inner_.sources(requester, request, hold(done));
}

void DelayedStore::walk_connected(std::size_t max, Completion done)
{
    inner_.walk_connected(max, hold(done));
}

void DelayedStore::expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done)
{
    inner_.expire(user, ip, port, hold(done));
}

}  // namespace peerdex
