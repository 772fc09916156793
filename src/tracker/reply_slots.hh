// The replies a tracker owes, one slot per request, in one pool shared by every session.
// A session queues its slots in request order and writes only the completed front, so
// answers keep their order whatever the store answers first. A store's completion carries
// (index, generation): once a slot is released its generation moves on, so the answer of a
// session that closed meanwhile finds nothing and is dropped.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "protocol.hh"
#include "request.hh"
#include "store.hh"

namespace peerdex {

class Session;

inline constexpr std::uint32_t kNoSlot = UINT32_MAX;

struct ReplySlot {
    Session* owner = nullptr;  // null while free
    std::uint32_t generation = 0;
    std::uint32_t next = kNoSlot;  // the owner's next slot, or the next free one
    Op op = Op::hello;
    Dialect dialect = Dialect::v1;  // of the session when the request was read: how its answer is encoded
    bool done = false;
    bool logged = false;  // the operation log is still to record it
    bool orphan = false;  // its session closed; kept only until the store answers, to log it
    std::uint64_t started_ns = 0;  // when the request was read: its latency for GET /metrics
    StoreReply reply;
    // The request, while the store is being called (its fields are the parser's buffers);
    // afterwards the copies below, kept only when the answer comes later.
    const Request* request = nullptr;
    std::string user, path, timestamp;
};

class ReplySlots {
public:
    explicit ReplySlots(std::size_t cap) : cap_(cap) {}

    bool full() const { return used_ >= cap_; }
    // A free slot for `owner`, or kNoSlot at the cap. `force` goes past the cap: a session's
    // last reply (the error of a cut request) must always find a slot.
    std::uint32_t acquire(Session* owner, bool force = false)
    {
        if (full() && !force)
            return kNoSlot;
        std::uint32_t i = free_;
        if (i == kNoSlot) {
            i = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        } else {
            free_ = slots_[i].next;
        }
        ReplySlot& s = slots_[i];
        s.owner = owner;
        s.orphan = false;
        s.next = kNoSlot;
        ++used_;
        return i;
    }
    void release(std::uint32_t i)
    {
        ReplySlot& s = slots_[i];
        s.owner = nullptr;
        ++s.generation;
        s.done = false;
        s.logged = false;
        s.orphan = false;
        s.request = nullptr;
        s.reply = StoreReply();  // a list stream still open is released here
        s.next = free_;
        free_ = i;
        --used_;
    }
    ReplySlot& operator[](std::uint32_t i) { return slots_[i]; }

    static std::uint64_t token(std::uint32_t i, std::uint32_t generation)
    {
        return static_cast<std::uint64_t>(generation) << 32 | i;
    }
    // The live slot a token names (owned or orphaned), or null when it was released since.
    ReplySlot* find(std::uint64_t token)
    {
        const auto i = static_cast<std::uint32_t>(token);
        if (i >= slots_.size())
            return nullptr;
        ReplySlot& s = slots_[i];
        return (s.owner || s.orphan) && s.generation == static_cast<std::uint32_t>(token >> 32) ? &s : nullptr;
    }

private:
    std::deque<ReplySlot> slots_;  // never shrinks: references stay valid
    std::uint32_t free_ = kNoSlot;
    std::size_t used_ = 0;
    std::size_t cap_;
};

}  // namespace peerdex
