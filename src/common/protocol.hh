// Operations of the tracker protocol (peerdex-protocol(7), TRACKER REQUESTS and SESSIONS)
// and their field grammar.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
};

// What a field after OP (and after the optional timestamp) may hold.
enum class FieldKind : std::uint8_t { user, path, description, port, version };

inline constexpr int kMaxOpFields = 3;
// Longest OP name on the wire ("GET_USER_INFO"); a longer first field is an unknown OP.
inline constexpr std::size_t kMaxOpNameBytes = 13;
// The only HELLO version this tracker speaks.
inline constexpr std::string_view kHelloVersion = "peerdex/1";

struct OpSpec {
    std::string_view name;
    std::uint8_t generic_error;  // the code a malformed request of this OP gets
    std::uint8_t field_count;
    FieldKind fields[kMaxOpFields];
};

const OpSpec& spec(Op op);
std::optional<Op> op_from_name(std::string_view name);
inline std::string_view op_name(Op op) { return spec(op).name; }

// Checks one field against the limits of peerdex-protocol(7): lengths, no control bytes, no
// whitespace in names and paths, user names not shaped like a timestamp, ports.
bool field_valid(FieldKind kind, std::string_view value);
// Empty when the field is valid; otherwise what is wrong with it, to follow "the user
// name " and the like in a message ("is 300 bytes long; the protocol allows at most 255").
std::string field_problem(FieldKind kind, std::string_view value);

// Per-field byte caps enforced while reading, before validation.
std::size_t field_cap(FieldKind kind);

}  // namespace peerdex
