#include "protocol.hh"

#include "wire.hh"

namespace peerdex {

namespace {

using K = FieldKind;

// Indexed by Op; the generic error codes are those of peerdex-protocol(7), TRACKER REQUESTS
// table.
constexpr OpSpec kSpecs[] = {
    {"HELLO", 2, 1, {K::version}},
    {"REGISTER", 2, 1, {K::user}},
    {"UNREGISTER", 2, 1, {K::user}},
    {"CONNECT", 3, 2, {K::user, K::port}},
    {"PUBLISH", 4, 3, {K::user, K::path, K::description}},
    {"DELETE", 4, 2, {K::user, K::path}},
    {"LIST_USERS", 3, 1, {K::user}},
    {"LIST_CONTENT", 4, 2, {K::user, K::user}},
    {"DISCONNECT", 3, 1, {K::user}},
    {"GET_USER_INFO", 4, 2, {K::user, K::user}},
    {"OWN", 1, 2, {K::user, K::key}},
    {"SEARCH", 3, 3, {K::user, K::query, K::limit}},
    {"SOURCES", 3, 3, {K::user, K::wanted_id, K::limit}},
};
// PUBLISH in a peerdex/2 session (peerdex-protocol(7), SESSIONS).
constexpr OpSpec kPublishV2 = {"PUBLISH", 4, 5, {K::user, K::path, K::description, K::size, K::content_id}};

// The longest decimal port we read before calling it malformed ("065535").
constexpr std::size_t kMaxPortBytes = 8;
constexpr std::size_t kMaxVersionBytes = 32;

bool has_space(std::string_view s)
{
    return s.find(' ') != std::string_view::npos;
}

}  // namespace

const OpSpec& spec(Op op, Dialect dialect)
{
    if (op == Op::publish && dialect == Dialect::v2)
        return kPublishV2;
    return kSpecs[static_cast<std::size_t>(op)];
}

bool op_in_dialect(Op op, Dialect dialect)
{
    return op != Op::sources || dialect == Dialect::v2;
}

std::optional<Dialect> hello_dialect(std::string_view version)
{
    if (version == kHelloVersion)
        return Dialect::v1;
    if (version == kHelloVersion2)
        return Dialect::v2;
    return std::nullopt;
}

std::string_view hello_version(Dialect dialect)
{
    return dialect == Dialect::v2 ? kHelloVersion2 : kHelloVersion;
}

namespace {

// Empty, or decimal 0..2^63-1 without sign or leading zeros.
bool size_field_valid(std::string_view v, std::uint64_t& size)
{
    if (v.empty())
        return true;
    if (v.size() > kMaxSizeDigits || (v.size() > 1 && v[0] == '0'))
        return false;
    const auto n = parse_decimal(v, kMaxContentSize);
    if (!n)
        return false;
    size = *n;
    return true;
}

}  // namespace

bool parse_content_meta(std::string_view size, std::string_view id, ContentMeta& out)
{
    ContentMeta m;
    if (!size_field_valid(size, m.size))
        return false;
    m.has_size = !size.empty();
    if (!id.empty() && !parse_content_id(id, m.id))
        return false;
    m.has_id = !id.empty();
    if (m.has_id && !m.has_size)
        return false;
    out = m;
    return true;
}

std::optional<Op> op_from_name(std::string_view name)
{
    for (std::size_t i = 0; i < std::size(kSpecs); ++i)
        if (kSpecs[i].name == name)
            return static_cast<Op>(i);
    return std::nullopt;
}

std::uint8_t result_code(Op op, Outcome outcome)
{
    const std::uint8_t generic = spec(op).generic_error;
    switch (outcome) {
    case Outcome::ok:
        return 0;
    case Outcome::name_in_use:
        return op == Op::register_user ? 1 : generic;
    case Outcome::no_such_user:
        return op == Op::register_user || op == Op::hello ? generic : 1;
    case Outcome::already_connected:
        return op == Op::connect ? 2 : generic;
    case Outcome::not_connected:  // only where the requester must be connected
        switch (op) {
        case Op::publish:
        case Op::remove:
        case Op::list_users:
        case Op::list_content:
        case Op::disconnect:
        case Op::get_user_info:
        case Op::search:
        case Op::sources:
            return 2;
        case Op::hello:
        case Op::register_user:
        case Op::unregister_user:
        case Op::connect:
        case Op::own:
            return generic;
        }
        return generic;
    case Outcome::already_published:
        return op == Op::publish ? 3 : generic;
    case Outcome::not_published:
        return op == Op::remove ? 3 : generic;
    case Outcome::no_such_target:
    case Outcome::target_offline:
        return op == Op::list_content || op == Op::get_user_info ? 3 : generic;
    case Outcome::not_owner:
    case Outcome::failed:
        return generic;
    }
    return generic;
}

std::size_t field_cap(FieldKind kind)
{
    switch (kind) {
    case K::port:
        return kMaxPortBytes;
    case K::version:
        return kMaxVersionBytes;
    case K::key:
        return kKeyHexBytes;
    case K::query:
        return kMaxQueryReadBytes;
    case K::limit:
        return kMaxLimitReadBytes;
    case K::wanted_id:
        return kMaxWantedIdReadBytes;
    case K::size:
        return kMaxSizeDigits;
    case K::content_id:
        return kContentIdLength;
    case K::user:
    case K::path:
    case K::description:
        return kMaxFieldBytes;
    }
    return kMaxFieldBytes;
}

FieldFault field_fault(FieldKind kind, std::string_view v)
{
    using F = FieldFault;
    if (v.size() > field_cap(kind))
        return F::too_long;
    if (kind == K::query || kind == K::limit || kind == K::wanted_id)
        return F::none;  // judged by the operation, after its requester (SEARCH, SOURCES)
    if (has_control_bytes(v))
        return F::control_byte;
    switch (kind) {
    case K::user:
    case K::path:
        if (v.empty())
            return F::empty;
        if (kind == K::user && is_timestamp(v))
            return F::timestamp_shape;
        return has_space(v) ? F::space : F::none;
    case K::description:
        return F::none;
    case K::port:
        return parse_port(v) ? F::none : F::not_a_port;
    case K::version:
        return v.empty() ? F::empty : F::none;
    case K::key:  // empty: no key (OWN then asks about the address alone)
        if (v.empty())
            return F::none;
        if (v.size() != kKeyHexBytes)
            return F::not_a_key;
        for (char c : v)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return F::not_a_key;
        return F::none;
    case K::size: {  // empty: unknown
        std::uint64_t size;
        return size_field_valid(v, size) ? F::none : F::not_a_size;
    }
    case K::content_id: {  // empty: unknown
        Digest id;
        return v.empty() || parse_content_id(v, id) ? F::none : F::not_a_content_id;
    }
    case K::query:
    case K::limit:
    case K::wanted_id:
        return F::none;
    }
    return F::none;
}

std::string field_problem(FieldKind kind, std::string_view v)
{
    switch (field_fault(kind, v)) {
    case FieldFault::none:
        return "";
    case FieldFault::too_long:
        return "is " + std::to_string(v.size()) + " bytes long; the protocol allows at most " +
               std::to_string(field_cap(kind));
    case FieldFault::control_byte:
        return "contains a control character (a tab, a newline or another byte below 0x20 or 0x7f)";
    case FieldFault::empty:
        return "is empty";
    case FieldFault::timestamp_shape:
        return "has the shape of a timestamp (DD/MM/YYYY HH:MM:SS), which the protocol reserves";
    case FieldFault::space:
        return "contains a space; the protocol allows none in user names and paths";
    case FieldFault::not_a_port:
        return "is not a port number from 1 to 65535";
    case FieldFault::not_a_key:
        return "is not a key of 64 lowercase hexadecimal digits";
    case FieldFault::not_a_size:
        return "is not a size in bytes (decimal, no sign, no leading zero, at most 2^63 - 1)";
    case FieldFault::not_a_content_id:
        return "is not a content id (sha256: and 64 hexadecimal digits)";
    }
    return "is not valid";
}

}  // namespace peerdex
