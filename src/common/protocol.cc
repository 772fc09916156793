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
};

// The longest decimal port we read before calling it malformed ("065535").
constexpr std::size_t kMaxPortBytes = 8;
constexpr std::size_t kMaxVersionBytes = 32;

bool has_space(std::string_view s)
{
    return s.find(' ') != std::string_view::npos;
}

}  // namespace

const OpSpec& spec(Op op)
{
    return kSpecs[static_cast<std::size_t>(op)];
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
    case Outcome::not_connected:
        return generic > 2 && op != Op::connect ? 2 : generic;
    case Outcome::already_published:
        return op == Op::publish ? 3 : generic;
    case Outcome::not_published:
        return op == Op::remove ? 3 : generic;
    case Outcome::no_such_target:
    case Outcome::target_offline:
        return op == Op::list_content || op == Op::get_user_info ? 3 : generic;
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
    case K::user:
    case K::path:
    case K::description:
        return kMaxFieldBytes;
    }
    return kMaxFieldBytes;
}

std::string field_problem(FieldKind kind, std::string_view v)
{
    if (v.size() > field_cap(kind))
        return "is " + std::to_string(v.size()) + " bytes long; the protocol allows at most " +
               std::to_string(field_cap(kind));
    if (has_control_bytes(v))
        return "contains a control character (a tab, a newline or another byte below 0x20 or 0x7f)";
    switch (kind) {
    case K::user:
    case K::path:
        if (v.empty())
            return "is empty";
        if (kind == K::user && is_timestamp(v))
            return "has the shape of a timestamp (DD/MM/YYYY HH:MM:SS), which the protocol reserves";
        if (has_space(v))
            return "contains a space; the protocol allows none in user names and paths";
        return "";
    case K::description:
        return "";
    case K::port:
        return parse_port(v) ? "" : "is not a port number from 1 to 65535";
    case K::version:
        return v.empty() ? "is empty" : "";
    }
    return "is not valid";
}

bool field_valid(FieldKind kind, std::string_view v)
{
    return field_problem(kind, v).empty();
}

}  // namespace peerdex
