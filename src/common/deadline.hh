// Connections ordered by their last deadline reset. Every member shares one timeout,
// so appending keeps the list sorted and the expired ones are always at the head:
// O(1) to reset, O(expired) to sweep, no timer per connection.
#pragma once

#include <cstdint>

namespace peerdex {

// T carries the links: T* dl_prev, T* dl_next; std::uint64_t dl_stamp; void* dl_owner.
template <class T>
class DeadlineList {
public:
    explicit DeadlineList(std::uint64_t timeout_ms) : timeout_ms_(timeout_ms) {}

    // (Re)inserts at the tail, taking it out of whichever list held it.
    void touch(T* s, std::uint64_t now)
    {
        if (s->dl_owner)
            static_cast<DeadlineList*>(s->dl_owner)->remove(s);
        s->dl_owner = this;
        s->dl_stamp = now;
        s->dl_prev = tail_;
        s->dl_next = nullptr;
        (tail_ ? tail_->dl_next : head_) = s;
        tail_ = s;
    }

    void remove(T* s)
    {
        (s->dl_prev ? s->dl_prev->dl_next : head_) = s->dl_next;
        (s->dl_next ? s->dl_next->dl_prev : tail_) = s->dl_prev;
        s->dl_prev = s->dl_next = nullptr;
        s->dl_owner = nullptr;
    }

    // Takes s out of its list, if any.
    static void unlink(T* s)
    {
        if (s->dl_owner)
            static_cast<DeadlineList*>(s->dl_owner)->remove(s);
    }

    T* expired(std::uint64_t now) const { return head_ && head_->dl_stamp + timeout_ms_ <= now ? head_ : nullptr; }
    T* head() const { return head_; }

private:
    T* head_ = nullptr;
    T* tail_ = nullptr;
    std::uint64_t timeout_ms_;
};

}  // namespace peerdex
