#include "answer.hh"

#include "wire.hh"

namespace peerdex {

std::uint8_t encode_answer(std::string& out, Op op, const StoreReply& reply, Dialect dialect)
{
    Encoder enc(out);
    const std::uint8_t code = result_code(op, reply.outcome);
    enc.code(code);
    if (code != 0)
        return code;
    switch (op) {
    case Op::hello:
        enc.field(hello_version(dialect));
        break;
    case Op::list_users:
    case Op::list_content:
    case Op::search:
    case Op::sources:
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

void ListEncoder::meta(const ContentMeta& meta)
{
    static constexpr char kHex[] = "0123456789abcdef";
    Encoder enc(out_);
    if (meta.has_size)
        enc.number(meta.size);
    else
        enc.field({});
    if (meta.has_id) {  // content_id_text(), without a string of its own per entry
        out_.append(kContentIdPrefix);
        for (const std::uint8_t b : meta.id) {
            out_.push_back(kHex[b >> 4]);
            out_.push_back(kHex[b & 15]);
        }
    }
    out_.push_back('\0');
}

void ListEncoder::content(std::string_view path, std::string_view description, const ContentMeta& meta)
{
    Encoder enc(out_);
    enc.field(path);  // canonical LIST_CONTENT carries paths only
    if (dialect_ == Dialect::v2) {
        enc.field(description);
        this->meta(meta);
    }
}

void ListEncoder::hit(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                      std::string_view description, const ContentMeta& meta)
{
    this->user(user, ip, port);
    Encoder enc(out_);
    enc.field(path);
    enc.field(description);
    if (dialect_ == Dialect::v2)
        this->meta(meta);
}

void ListEncoder::source(std::string_view user, const Address& ip, std::uint16_t port, std::string_view path,
                         std::uint64_t size)
{
    this->user(user, ip, port);
    Encoder enc(out_);
    enc.field(path);
    enc.number(size);
}

}  // namespace peerdex
