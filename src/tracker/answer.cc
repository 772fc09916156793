#include "answer.hh"

#include "wire.hh"

namespace peerdex {

std::uint8_t encode_answer(std::string& out, Op op, const StoreReply& reply)
{
    Encoder enc(out);
    const std::uint8_t code = result_code(op, reply.outcome);
    enc.code(code);
    if (code != 0)
        return code;
    switch (op) {
    case Op::hello:
        enc.field(kHelloVersion);
        break;
    case Op::list_users:
    case Op::list_content:
    case Op::search:
        enc.number(reply.list ? reply.list->count() : 0);
        break;
    case Op::get_user_info:
        reply.ip.append_to(out);
        out.push_back('\0');
        enc.number(reply.port);
        break;
    case Op::register_user:
    case Op::unregister_user:
    case Op::connect:
    case Op::publish:
    case Op::remove:
    case Op::disconnect:
    case Op::own:
        break;  // the code says it all
    }
    return code;
}

void ListEncoder::user(std::string_view name, const Address& ip, std::uint16_t port)
{
    Encoder enc(out_);
    enc.field(name);
    ip.append_to(out_);
    out_.push_back('\0');
    enc.number(port);
}

void ListEncoder::content(std::string_view path, std::string_view)
{
    Encoder(out_).field(path);  // LIST_CONTENT carries paths only
}

void ListEncoder::hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                      std::string_view description)
{
    this->user(user, ip, port);
    Encoder enc(out_);
    enc.field(path);
    enc.field(description);
}

}  // namespace peerdex
