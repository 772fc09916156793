#include "request.hh"

#include <algorithm>

namespace peerdex {

void RequestParser::expect_field()
{
    std::size_t cap = field_cap(op_spec().fields[next_field_]);
    // The field right after OP may also be the timestamp.
    if (state_ == State::first)
        cap = std::max(cap, kTimestampBytes);
    reader_.start(cap);
}

RequestParser::Result RequestParser::feed(const char*& p, const char* end)
{
    while (state_ != State::dead) {
        const FieldReader::Status st = reader_.next(p, end);
        if (st == FieldReader::Status::need_more)
            return Result::need_more;
        if (state_ == State::op) {
            auto op = st == FieldReader::Status::field ? op_from_name(reader_.field()) : std::nullopt;
            if (!op || !op_in_dialect(*op, dialect_)) {
                state_ = State::dead;
                return Result::unknown_op;
            }
            req_.op = *op;
            req_.has_timestamp = false;
            next_field_ = 0;
            state_ = State::first;
            expect_field();
            continue;
        }
        if (st == FieldReader::Status::too_long) {
            state_ = State::dead;
            return Result::malformed;
        }
        const std::string_view value = reader_.field();
        if (state_ == State::first) {
            state_ = State::fields;
            if (is_timestamp(value)) {
                req_.has_timestamp = true;
                req_.timestamp.assign(value);
                expect_field();
                continue;
            }
        }
        const OpSpec& s = op_spec();
        if (!field_valid(s.fields[next_field_], value)) {
            state_ = State::dead;
            return Result::malformed;
        }
        req_.fields[next_field_].assign(value);
        if (++next_field_ == s.field_count) {
            // Size and id are judged together: an id without a size is malformed too.
            req_.meta = {};
            if (req_.op == Op::publish && dialect_ == Dialect::v2 &&
                !parse_content_meta(req_.fields[3], req_.fields[4], req_.meta)) {
                state_ = State::dead;
                return Result::malformed;
            }
            state_ = State::op;
            reader_.start(kMaxOpNameBytes);
            return Result::request;
        }
        expect_field();
    }
    return Result::malformed;
}

}  // namespace peerdex
