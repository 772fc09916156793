#include "command.hh"

#include <cctype>

namespace peerdex {

namespace {

struct CommandSpec {
    std::string_view name;
    std::string_view usage;  // the arguments, for the syntax error line
    int args;                // exact count; PUBLISH: at least this many
    // Result lines for codes 0..4; empty entries fall back to "<NAME> FAIL".
    std::string_view lines[5];
};

// Indexed by Command; the lines are peerdex-protocol(7), CONSOLE LINES word for word.
constexpr CommandSpec kCommands[] = {
    {"REGISTER", "<user>", 1, {"REGISTER OK", "USERNAME IN USE", "REGISTER FAIL"}},
    {"UNREGISTER", "<user>", 1, {"UNREGISTER OK", "USER DOES NOT EXIST", "UNREGISTER FAIL"}},
    {"CONNECT", "<user>", 1,
     {"CONNECT OK", "CONNECT FAIL, USER DOES NOT EXIST", "USER ALREADY CONNECTED", "CONNECT FAIL"}},
    {"DISCONNECT", "<user>", 1,
     {"DISCONNECT OK", "DISCONNECT FAIL, USER DOES NOT EXIST", "DISCONNECT FAIL, USER NOT CONNECTED",
      "DISCONNECT FAIL"}},
    {"PUBLISH", "<path> <description>", 1,
     {"PUBLISH OK", "PUBLISH FAIL, USER DOES NOT EXIST", "PUBLISH FAIL, USER NOT CONNECTED",
      "PUBLISH FAIL, CONTENT ALREADY PUBLISHED", "PUBLISH FAIL"}},
    {"DELETE", "<path>", 1,
     {"DELETE OK", "DELETE FAIL, USER DOES NOT EXIST", "DELETE FAIL, USER NOT CONNECTED",
      "DELETE FAIL, CONTENT NOT PUBLISHED", "DELETE FAIL"}},
    {"LIST_USERS", "", 0,
     {"LIST_USERS OK", "LIST_USERS FAIL, USER DOES NOT EXIST", "LIST_USERS FAIL, USER NOT CONNECTED",
      "LIST_USERS FAIL"}},
    {"LIST_CONTENT", "<user>", 1,
     {"LIST_CONTENT OK", "LIST_CONTENT FAIL, USER DOES NOT EXIST", "LIST_CONTENT FAIL, USER NOT CONNECTED",
      "LIST_CONTENT FAIL, REMOTE USER DOES NOT EXIST", "LIST_CONTENT FAIL"}},
    {"GET_FILE", "<user> <remote path> <local path>", 3,
     {"GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST", "GET_FILE FAIL"}},
    {"SEARCH", "<terms...>", 1,
     {"SEARCH OK", "SEARCH FAIL, USER DOES NOT EXIST", "SEARCH FAIL, USER NOT CONNECTED", "SEARCH FAIL"}},
    // GET is GET_FILE of a hit: its result lines are GET_FILE's (the shell prints them).
    {"GET", "<n> [local path]", 1, {"GET_FILE OK", "GET_FILE FAIL, FILE NOT EXIST", "GET_FILE FAIL"}},
    {"STATS", "", 0, {"STATS OK"}},
    {"HELP", "", 0, {"Commands:"}},
    {"QUIT", "", 0, {"+++ FINISHED +++"}},
};

const CommandSpec& spec_of(Command c)
{
    return kCommands[static_cast<std::size_t>(c)];
}

bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string upper(std::string_view s)
{
    std::string u(s);
    for (char& ch : u)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return u;
}

// The [begin, end) of each blank-separated word.
std::vector<std::pair<std::size_t, std::size_t>> split_words(std::string_view line)
{
    std::vector<std::pair<std::size_t, std::size_t>> words;
    for (std::size_t i = 0; i < line.size();) {
        while (i < line.size() && blank(line[i]))
            ++i;
        const std::size_t b = i;
        while (i < line.size() && !blank(line[i]))
            ++i;
        if (i > b)
            words.emplace_back(b, i);
    }
    return words;
}

}  // namespace

std::string_view command_name(Command c)
{
    return spec_of(c).name;
}

ParsedLine parse_line(std::string_view line)
{
    ParsedLine out;
    const auto words = split_words(line);
    if (words.empty())
        return out;
    out.word = std::string(line.substr(words[0].first, words[0].second - words[0].first));
    const std::string name = upper(out.word);
    std::size_t index = std::size(kCommands);
    for (std::size_t i = 0; i < std::size(kCommands); ++i)
        if (kCommands[i].name == name)
            index = i;
    if (index == std::size(kCommands)) {
        out.kind = ParsedLine::Kind::unknown;
        return out;
    }
    out.command = static_cast<Command>(index);
    const int nargs = static_cast<int>(words.size()) - 1;
    const CommandSpec& s = kCommands[index];
    if (out.command == Command::publish) {
        // PUBLISH <path> <description...>: the description keeps its inner spaces.
        if (nargs < 2) {
            out.kind = ParsedLine::Kind::syntax_error;
            return out;
        }
        out.args.emplace_back(line.substr(words[1].first, words[1].second - words[1].first));
        out.args.emplace_back(line.substr(words[2].first, words.back().second - words[2].first));
    } else if (out.command == Command::search) {
        if (nargs < 1) {
            out.kind = ParsedLine::Kind::syntax_error;
            return out;
        }
        out.args.emplace_back(line.substr(words[1].first, words.back().second - words[1].first));
    } else if (out.command == Command::get) {
        if (nargs < 1 || nargs > 2) {
            out.kind = ParsedLine::Kind::syntax_error;
            return out;
        }
        for (std::size_t w = 1; w < words.size(); ++w)
            out.args.emplace_back(line.substr(words[w].first, words[w].second - words[w].first));
    } else {
        if (nargs != s.args) {
            out.kind = ParsedLine::Kind::syntax_error;
            return out;
        }
        for (std::size_t w = 1; w < words.size(); ++w)
            out.args.emplace_back(line.substr(words[w].first, words[w].second - words[w].first));
    }
    out.kind = ParsedLine::Kind::command;
    return out;
}

Completion complete(std::string_view before, std::string_view word, const std::vector<std::string>& users)
{
    Completion out;
    std::vector<std::string_view> words;
    for (const auto& [b, e] : split_words(before))
        words.push_back(before.substr(b, e - b));
    auto starts_with = [](std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; };
    if (words.empty()) {
        const std::string typed = upper(word);
        for (const auto& c : kCommands)
            if (starts_with(c.name, typed))
                out.words.emplace_back(c.name);
        return out;
    }
    const std::string first = upper(words[0]);
    const std::size_t arg = words.size();  // 1 for the first argument
    const bool names_user = (arg == 1 && (first == "UNREGISTER" || first == "CONNECT" || first == "DISCONNECT" ||
                                          first == "LIST_CONTENT" || first == "GET_FILE"));
    if (names_user) {
        for (const auto& u : users)
            if (starts_with(u, word))
                out.words.push_back(u);
        return out;
    }
    out.files = (first == "PUBLISH" && arg == 1) || (first == "DELETE" && arg == 1) ||
                (first == "GET_FILE" && (arg == 2 || arg == 3)) || (first == "GET" && arg == 2);
    return out;
}

std::vector<std::string> help_lines()
{
    std::vector<std::string> out{"c> Commands:"};
    for (const auto& s : kCommands)
        out.push_back("\t" + std::string(s.name) + (s.usage.empty() ? "" : " " + std::string(s.usage)));
    return out;
}

std::string syntax_error_line(Command c)
{
    const CommandSpec& s = spec_of(c);
    std::string line = "c> Syntax error. Usage: " + std::string(s.name);
    if (!s.usage.empty())
        line += " " + std::string(s.usage);
    return line;
}

std::string unknown_command_line(std::string_view word)
{
    return "c> Error: command " + std::string(word) + " not valid.";
}

std::string result_line(Command c, int code)
{
    const CommandSpec& s = spec_of(c);
    if (c == Command::quit)
        return std::string(s.lines[0]);
    if (code >= 0 && code < 5 && !s.lines[code].empty() && (code == 0 || s.lines[code] != s.lines[0]))
        return "c> " + std::string(s.lines[code]);
    return "c> " + std::string(s.name) + " FAIL";
}

}  // namespace peerdex
