// How each operation's answer is written on the wire (peerdex-protocol(7), TRACKER REQUESTS):
// the one place where a store's outcome and data become bytes. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "protocol.hh"
#include "store.hh"

namespace peerdex {

// Appends the head of `op`'s answer: its result code, then what follows it (the HELLO version
// of `dialect`, the count of a list, the endpoint of GET_USER_INFO); a list's entries come
// from ListEncoder. Returns the code.
std::uint8_t encode_answer(std::string& out, Op op, const StoreReply& reply, Dialect dialect = Dialect::v1);

// Encodes list entries into `out` in `dialect` (peerdex/2 adds size and content id to
// LIST_CONTENT's and SEARCH's entries); full() once `out` holds `limit` bytes, so that a list
// of any length goes out in chunks of about that size.
class ListEncoder final : public ListSink {
public:
    ListEncoder(std::string& out, std::size_t limit, Dialect dialect = Dialect::v1)
        : out_(out), limit_(limit), dialect_(dialect)
    {
    }
    void user(std::string_view name, const Address& ip, std::uint16_t port) override;
    void content(std::string_view path, std::string_view description, const ContentMeta& meta) override;
    void hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
             std::string_view description, const ContentMeta& meta) override;
    void source(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                std::uint64_t size) override;
    bool full() const override { return out_.size() >= limit_; }

private:
    // The size and id fields of peerdex/2, each empty when unknown.
    void meta(const ContentMeta& meta);

    std::string& out_;
    std::size_t limit_;
    Dialect dialect_;
};

}  // namespace peerdex
