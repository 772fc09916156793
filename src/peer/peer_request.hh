// The request header of a peer transfer (peerdex-protocol(7), PEER TRANSFERS, FILE RANGES,
// FILE SERVER): OP, then its fields, each read with its cap, from a stream that may split or
// batch them arbitrarily. PUT_FILE's body follows the header and is not read here. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "wire.hh"

namespace peerdex {

enum class PeerOp { list_files, get_file, get_range, get_tree, put_file, unknown };

class PeerRequestParser {
public:
    enum class Result {
        need_more,  // all input consumed
        op,         // op() was just read (the caller may refuse it); more fields may follow
        request,    // the whole header: op() and fields(); p is at what follows it
        refused,    // a field over its cap: answer refusal() and read nothing more
    };

    // Longest OP name, and the longest offset, length or size in decimal.
    static constexpr std::size_t kMaxOpBytes = 16;
    static constexpr std::size_t kMaxSizeDigits = 20;

    // Consumes input from [p, end) up to the next result; advances p.
    Result feed(const char*& p, const char* end);

    PeerOp op() const { return op_; }
    std::string_view op_name() const { return op_name_; }
    const std::vector<std::string>& fields() const { return fields_; }
    // The reply code of a refused request: 1 for a name no file can have, 2 otherwise.
    char refusal() const { return refusal_; }

private:
    std::size_t fields_wanted() const;

    FieldReader reader_{kMaxOpBytes};
    PeerOp op_ = PeerOp::unknown;
    std::string op_name_;
    std::vector<std::string> fields_;
    bool op_read_ = false;
    bool done_ = false;
    char refusal_ = 0;
};

}  // namespace peerdex
