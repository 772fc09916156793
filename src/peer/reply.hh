// Decodes replies of trackers and peers with the tolerance of peerdex-protocol(7), 
// CONSOLE LINES: the result code as one raw byte or as an ASCII decimal string with or without its
// NUL, then, on success, the fields the operation returns. Pure and incremental.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wire.hh"

namespace peerdex {

class ReplyDecoder {
public:
    enum class Status { need_more, done, error };

    // What follows a zero code: nothing; a list of `per_entry` fields per entry after
    // a count; or a fixed number of fields (GET_USER_INFO: 2, GET_FILE: 1, HELLO: 1).
    void expect_code_only() { start(Shape::code_only, 0); }
    void expect_list(int per_entry) { start(Shape::list, per_entry); }
    void expect_fields(int n) { start(Shape::fields, n); }

    // Consumes bytes up to the end of the reply; advances p. Bytes after a complete
    // reply are the caller's (a canonical caller ignores them).
    Status feed(const char*& p, const char* end);
    // The peer closed: completes a decimal code sent without its NUL.
    Status eof();

    int code() const { return code_; }
    const std::vector<std::string>& fields() const { return fields_; }
    std::size_t count() const { return count_; }
    const std::string& error() const { return error_; }

    // Caps on what a peer may send us: entries in a list, and the memory the fields of one
    // reply hold (their bytes and each string's own size), so a tracker that sends a count
    // of ten million and then endless fields is refused before it exhausts the client.
    static constexpr std::size_t kMaxListEntries = 10'000'000;
    static constexpr std::size_t kMaxReplyBytes = std::size_t{256} << 20;
    // A lower cap than kMaxReplyBytes for the replies that follow (tests, small boxes).
    void set_max_bytes(std::size_t n) { max_bytes_ = n; }

private:
    enum class Shape { code_only, list, fields };
    enum class State { code, code_digits, count, fields, done };
    void start(Shape s, int n);
    Status after_code();
    Status fail(const char* why);

    Shape shape_ = Shape::code_only;
    State state_ = State::code;
    int n_ = 0;
    int code_ = -1;
    std::string digits_;
    std::size_t count_ = 0;
    std::size_t wanted_ = 0;
    std::size_t held_ = 0;
    std::size_t max_bytes_ = kMaxReplyBytes;
    std::vector<std::string> fields_;
    FieldReader reader_;
    std::string error_;
};

}  // namespace peerdex
