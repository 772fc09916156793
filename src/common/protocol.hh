// Operations of the tracker protocol (peerdex-protocol(7), TRACKER REQUESTS and SESSIONS)
// and their field grammar.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "content_id.hh"

namespace peerdex {

enum class Op : std::uint8_t {
    hello,
    register_user,
    unregister_user,
    connect,
    publish,
    remove,  // DELETE
    list_users,
    list_content,
    disconnect,
    get_user_info,
    own,     // HELLO sessions only (peerdex-protocol(7), OWNERSHIP)
    search,  // peerdex-protocol(7), SEARCH
    sources, // peerdex/2 sessions only (peerdex-protocol(7), SOURCES)
};

// What a field after OP (and after the optional timestamp) may hold.
enum class FieldKind : std::uint8_t {
    user, path, description, port, version, key, query, limit, size, content_id,
    wanted_id,  // SOURCES's id: judged by the operation, after its requester
};

// SEARCH's query and limit are read whole up to these caps and judged after the requester
// (codes 1 and 2 come first, then 3, and a HELLO session survives a 3): a query of up to
// four times the 255 bytes allowed is a mistake answered 3; a longer one is malformed.
inline constexpr std::size_t kMaxQueryReadBytes = 1024;
inline constexpr std::size_t kMaxLimitReadBytes = 16;
// SOURCES's id, read whole up to this cap and judged like SEARCH's query: a wrong id of up to
// this many bytes is answered 3 and the session goes on; a longer one is malformed.
inline constexpr std::size_t kMaxWantedIdReadBytes = 128;

// OWN's key: 32 random bytes as 64 lowercase hexadecimal digits, or empty (none).
inline constexpr std::size_t kKeyHexBytes = 64;

// PUBLISH in a peerdex/2 session: user, path, description, size, content id.
inline constexpr int kMaxOpFields = 5;
// Longest OP name on the wire ("GET_USER_INFO"); a longer first field is an unknown OP.
inline constexpr std::size_t kMaxOpNameBytes = 13;
// The HELLO versions (peerdex-protocol(7), SESSIONS). peerdex/1: the requests and replies of
// TRACKER REQUESTS; peerdex/2: PUBLISH, LIST_CONTENT and SEARCH also carry size and content id.
inline constexpr std::string_view kHelloVersion = "peerdex/1";
inline constexpr std::string_view kHelloVersion2 = "peerdex/2";
// A size field: decimal, at most 19 digits (2^63 - 1, what SQLite's INTEGER holds).
inline constexpr std::size_t kMaxSizeDigits = 19;
inline constexpr std::uint64_t kMaxContentSize = INT64_MAX;

// The shape of a connection's requests and replies. v1: canonical connections and peerdex/1
// sessions (byte for byte the course's); v2: a peerdex/2 session.
enum class Dialect : std::uint8_t { v1, v2 };
// The dialect a HELLO version asks for; none for a version this tracker does not speak.
std::optional<Dialect> hello_dialect(std::string_view version);
// The version HELLO answers with in `dialect`.
std::string_view hello_version(Dialect dialect);

// What a peerdex/2 PUBLISH says of its file: its size and content id, each known or not (an
// id only with a size). Canonical and peerdex/1 publications know neither.
struct ContentMeta {
    std::uint64_t size = 0;
    Digest id{};
    bool has_size = false;
    bool has_id = false;
    bool known() const { return has_size; }
    bool operator==(const ContentMeta& o) const
    {
        return has_size == o.has_size && has_id == o.has_id && (!has_size || size == o.size) &&
               (!has_id || id == o.id);
    }
    bool operator!=(const ContentMeta& o) const { return !(*this == o); }
};
inline constexpr ContentMeta kUnknownContent{};

// PUBLISH's size and id fields (each empty: unknown) into `out`; false when either breaks its
// rule or an id comes without a size.
bool parse_content_meta(std::string_view size, std::string_view id, ContentMeta& out);

struct OpSpec {
    std::string_view name;
    std::uint8_t generic_error;  // the code a malformed request of this OP gets
    std::uint8_t field_count;
    FieldKind fields[kMaxOpFields];
};

// The fields of `op` in `dialect` (only PUBLISH differs).
const OpSpec& spec(Op op, Dialect dialect = Dialect::v1);
// False for an OP that `dialect` does not have (SOURCES outside peerdex/2): it is then an
// unknown OP, closed without reply.
bool op_in_dialect(Op op, Dialect dialect);
std::optional<Op> op_from_name(std::string_view name);
inline std::string_view op_name(Op op) { return spec(op).name; }

// What a tracker operation came to, as the registry (or any store) says it. How each
// operation encodes it on the wire is result_code()'s business alone.
enum class Outcome : std::uint8_t {
    ok,
    name_in_use,        // REGISTER
    no_such_user,       // the user named (the requester) is not registered
    already_connected,  // CONNECT
    not_connected,      // the requester is registered but not connected
    already_published,  // PUBLISH
    not_published,      // DELETE
    no_such_target,     // LIST_CONTENT, GET_USER_INFO: the target is not registered
    target_offline,     // GET_USER_INFO: the target is registered but not connected
    not_owner,          // the user belongs to another address or key (--auth): the generic code
    failed,             // anything else: the operation's generic error code
};

// The result code of `op` for `outcome` (peerdex-protocol(7), TRACKER REQUESTS); an
// outcome the operation has no code of its own for gets its generic error code.
std::uint8_t result_code(Op op, Outcome outcome);

// Checks one field against the limits of peerdex-protocol(7): lengths, no control bytes, no
// whitespace in names and paths, user names not shaped like a timestamp, ports.
enum class FieldFault : std::uint8_t {
    none,
    too_long,
    control_byte,
    empty,
    timestamp_shape,
    space,
    not_a_port,
    not_a_key,
    not_a_size,
    not_a_content_id,
};
// The first limit the field breaks, cheaply (the tracker checks every field with it).
FieldFault field_fault(FieldKind kind, std::string_view value);
inline bool field_valid(FieldKind kind, std::string_view value) { return field_fault(kind, value) == FieldFault::none; }
// Empty when the field is valid; otherwise what is wrong with it, to follow "the user
// name " and the like in a message ("is 300 bytes long; the protocol allows at most 255").
std::string field_problem(FieldKind kind, std::string_view value);

// Per-field byte caps enforced while reading, before validation.
std::size_t field_cap(FieldKind kind);

}  // namespace peerdex
