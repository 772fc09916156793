#include "peer_request.hh"

namespace peerdex {

namespace {

PeerOp peer_op(std::string_view name)
{
    if (name == "LIST_FILES")
        return PeerOp::list_files;
    if (name == "GET_FILE")
        return PeerOp::get_file;
    if (name == "GET_RANGE")
        return PeerOp::get_range;
    if (name == "GET_TREE")
        return PeerOp::get_tree;
    if (name == "PUT_FILE")
        return PeerOp::put_file;
    return PeerOp::unknown;
}

}  // namespace

std::size_t PeerRequestParser::fields_wanted() const
{
    switch (op_) {
    case PeerOp::get_file:
    case PeerOp::get_tree:
        return 1;  // name
    case PeerOp::put_file:
        return 2;  // name, size
    case PeerOp::get_range:
        return 3;  // name, offset, length
    case PeerOp::list_files:
    case PeerOp::unknown:
        break;
    }
    return 0;
}

PeerRequestParser::Result PeerRequestParser::feed(const char*& p, const char* end)
{
    while (!done_) {
        const FieldReader::Status st = reader_.next(p, end);
        if (st == FieldReader::Status::need_more)
            return Result::need_more;
        if (st == FieldReader::Status::too_long) {
            // An unknown operation, a name no file can have, or a size beyond any disk.
            done_ = true;
            refusal_ = op_read_ && fields_.empty() ? '\x01' : '\x02';
            return Result::refused;
        }
        if (!op_read_) {
            op_read_ = true;
            op_name_.assign(reader_.field());
            op_ = peer_op(op_name_);
            done_ = fields_wanted() == 0;  // LIST_FILES is whole; an unknown OP ends here
            reader_.start(kMaxFieldBytes);
            return Result::op;
        }
        fields_.emplace_back(reader_.field());
        if (fields_.size() == fields_wanted()) {
            done_ = true;
            return Result::request;
        }
        reader_.start(kMaxSizeDigits);  // the fields after the name are numbers
    }
    return Result::need_more;
}

}  // namespace peerdex
