// How each operation's answer is written on the wire (peerdex-protocol(7), TRACKER REQUESTS):
// the one place where a store's outcome and data become bytes. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "protocol.hh"
#include "store.hh"

namespace peerdex {

// Appends the head of `op`'s answer: its result code, then what follows it (the HELLO version,
// the count of a list, the endpoint of GET_USER_INFO); a list's entries come from ListEncoder.
// Returns the code.
std::uint8_t encode_answer(std::string& out, Op op, const StoreReply& reply);

// Encodes list entries into `out`; full() once `out` holds `limit` bytes, so that a list of
// any length goes out in chunks of about that size.
class ListEncoder final : public ListSink {
public:
    ListEncoder(std::string& out, std::size_t limit) : out_(out), limit_(limit) {}
    void user(std::string_view name, const Address& ip, std::uint16_t port) override;
    void content(std::string_view path, std::string_view description) override;
    void hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
             std::string_view description) override;
    bool full() const override { return out_.size() >= limit_; }

private:
    std::string& out_;
    std::size_t limit_;
};

}  // namespace peerdex
