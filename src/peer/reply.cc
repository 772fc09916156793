#include "reply.hh"

namespace peerdex {

namespace {
// "-1" and "0".."4" fit; anything longer is not a result code.
constexpr std::size_t kMaxCodeDigits = 4;
}

void ReplyDecoder::start(Shape s, int n)
{
    shape_ = s;
    n_ = n;
    state_ = State::code;
    code_ = -1;
    digits_.clear();
    count_ = wanted_ = held_ = 0;
    fields_.clear();
    error_.clear();
    reader_.start(kMaxFieldBytes);
}

ReplyDecoder::Status ReplyDecoder::fail(const char* why)
{
    error_ = why;
    state_ = State::done;
    return Status::error;
}

ReplyDecoder::Status ReplyDecoder::after_code()
{
    if (code_ != 0 || shape_ == Shape::code_only) {
        state_ = State::done;
        return Status::done;
    }
    if (shape_ == Shape::list) {
        state_ = State::count;
    } else {
        state_ = State::fields;
        wanted_ = static_cast<std::size_t>(n_);
    }
    reader_.start(kMaxFieldBytes);
    return Status::need_more;
}

ReplyDecoder::Status ReplyDecoder::feed(const char*& p, const char* end)
{
    while (p < end) {
        switch (state_) {
        case State::done:
            return Status::done;
        case State::code: {
            const auto b = static_cast<unsigned char>(*p);
            if (b <= 4) {  // a raw byte
                ++p;
                code_ = b;
                if (auto st = after_code(); st != Status::need_more)
                    return st;
                continue;
            }
            if (b == '-' || (b >= '0' && b <= '9')) {
                state_ = State::code_digits;
                continue;
            }
            return fail("not a result code");
        }
        case State::code_digits: {
            const char c = *p;
            if (c == '\0') {
                ++p;
                auto v = parse_decimal(digits_[0] == '-' ? digits_.substr(1) : digits_, 1000);
                if (!v)
                    return fail("malformed decimal result code");
                code_ = digits_[0] == '-' ? -static_cast<int>(*v) : static_cast<int>(*v);
                if (auto st = after_code(); st != Status::need_more)
                    return st;
                continue;
            }
            if (digits_.size() >= kMaxCodeDigits || !((c >= '0' && c <= '9') || (c == '-' && digits_.empty())))
                return fail("malformed decimal result code");
            digits_.push_back(c);
            ++p;
            continue;
        }
        case State::count: {
            auto st = reader_.next(p, end);
            if (st == FieldReader::Status::need_more)
                return Status::need_more;
            auto n = st == FieldReader::Status::field ? parse_decimal(reader_.field(), kMaxListEntries)
                                                       : std::nullopt;
            if (!n)
                return fail("malformed list count");
            count_ = static_cast<std::size_t>(*n);  // at most kMaxListEntries
            wanted_ = count_ * static_cast<std::size_t>(n_);
            state_ = State::fields;
            fields_.reserve(std::min<std::size_t>(wanted_, 4096));
            if (wanted_ == 0) {
                state_ = State::done;
                return Status::done;
            }
            continue;
        }
        case State::fields: {
            auto st = reader_.next(p, end);
            if (st == FieldReader::Status::need_more)
                return Status::need_more;
            if (st == FieldReader::Status::too_long)
                return fail("over-long field");
            held_ += reader_.field().size() + sizeof(std::string);
            if (held_ > max_bytes_)
                return fail("reply larger than the client holds");
            fields_.emplace_back(reader_.field());
            if (fields_.size() == wanted_) {
                state_ = State::done;
                return Status::done;
            }
            continue;
        }
        }
    }
    return state_ == State::done ? Status::done : Status::need_more;
}

ReplyDecoder::Status ReplyDecoder::eof()
{
    if (state_ == State::done)
        return Status::done;
    if (state_ == State::code_digits && !digits_.empty() && digits_ != "-") {
        const char* nul = "\0";
        const char* p = nul;
        return feed(p, nul + 1);
    }
    return fail("connection closed before the reply was complete");
}

}  // namespace peerdex
