// Assembles tracker requests (peerdex-protocol(7), TRACKER REQUESTS and SESSIONS) from a
// byte stream that may split or batch them arbitrarily. Pure: no I/O, no registry.
#pragma once

#include <string>

#include "protocol.hh"
#include "wire.hh"

namespace peerdex {

struct Request {
    Op op = Op::hello;
    bool has_timestamp = false;
    std::string timestamp;
    std::string fields[kMaxOpFields];  // reused between requests: no allocation per request
    ContentMeta meta;                  // PUBLISH in a peerdex/2 session: its size and id fields
};

class RequestParser {
public:
    enum class Result {
        need_more,   // all input consumed, no complete request yet
        request,     // request() holds a complete, valid request
        malformed,   // op() is known; reply its generic error code and close
        unknown_op,  // close without reply
    };

    RequestParser() : reader_(kMaxOpNameBytes) {}

    // The shape of the requests after the current one (a HELLO session's version).
    void set_dialect(Dialect dialect) { dialect_ = dialect; }

    // Consumes input from [p, end) up to the end of one request; advances p.
    // After `malformed` or `unknown_op` the parser accepts nothing more.
    Result feed(const char*& p, const char* end);

    const Request& request() const { return req_; }
    Op op() const { return req_.op; }
    // True once the OP of the current request has been read.
    bool op_known() const { return state_ == State::first || state_ == State::fields; }
    // True when bytes of an unfinished request have been consumed.
    bool in_progress() const { return state_ != State::op || reader_.partial(); }

private:
    enum class State { op, first, fields, dead };

    void expect_field();
    const OpSpec& op_spec() const { return spec(req_.op, dialect_); }

    FieldReader reader_;
    Request req_;
    State state_ = State::op;
    int next_field_ = 0;
    Dialect dialect_ = Dialect::v1;
};

}  // namespace peerdex
