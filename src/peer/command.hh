// The shell's commands and their console lines (peerdex-protocol(7), CONSOLE LINES):
// parsing a line into a command, and the exact result line for each command and result
// code. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace peerdex {

enum class Command : std::uint8_t {
    register_user,
    unregister_user,
    connect,
    disconnect,
    publish,
    remove,  // DELETE
    list_users,
    list_content,
    get_file,
    search,  // peerdex-protocol(7), SEARCH
    get,     // GET_FILE of a hit of the last SEARCH
    stats,  // the peer listener's statistics
    help,
    quit,
};

struct ParsedLine {
    enum class Kind { empty, command, syntax_error, unknown };
    Kind kind = Kind::empty;
    Command command = Command::quit;
    std::vector<std::string> args;
    std::string word;  // the command word as typed (for the unknown-command line)
};

// Splits on blanks; the command word is case-insensitive, the arguments are not.
// PUBLISH keeps everything after the path, inner spaces included, as the description;
// SEARCH keeps everything after the word as its query; GET takes one or two arguments.
ParsedLine parse_line(std::string_view line);

// "c> Syntax error. Usage: PUBLISH <path> <description>"
std::string syntax_error_line(Command c);
// "c> Error: command FOO not valid."
std::string unknown_command_line(std::string_view word);

// The result line of a command for a tracker result code (0..4), e.g.
// "c> PUBLISH FAIL, USER NOT CONNECTED". Codes without a line of their own, and
// failures to reach the tracker (code < 0), give the command's generic FAIL line.
std::string result_line(Command c, int code);

// HELP: "c> Commands:" then a tab and each command with its arguments.
std::vector<std::string> help_lines();

// The command's name on the wire and in the console.
std::string_view command_name(Command c);

// Tab completion of the word being typed, given the line before it: command words at
// the start of a line, the user names last seen in LIST_USERS where an argument names
// a user, local paths (left to the file name completer: `files`) where one is a path.
struct Completion {
    std::vector<std::string> words;
    bool files = false;
};
Completion complete(std::string_view before, std::string_view word, const std::vector<std::string>& users);

}  // namespace peerdex
