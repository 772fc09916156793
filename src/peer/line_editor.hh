// Line editing, history and Tab completion for the shell on a terminal: libedit's
// readline interface in its callback form, driven from the libuv loop (a poll on
// standard input; the loop never blocks in the library). One instance per process:
// the library's state is global. Built only with the line_editing feature.
#pragma once

#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "command.hh"

namespace peerdex {

class LineEditor {
public:
    using Complete = std::function<Completion(std::string_view before, std::string_view word)>;
    using Line = std::function<void(std::optional<std::string> line)>;  // nullopt: end of input

    // Loads the history from `history_path` (none when empty).
    LineEditor(uv_loop_t* loop, std::string history_path, Complete complete);
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;
    ~LineEditor();

    // Shows the prompt and edits one line; `on_line` runs once, on the loop. The terminal
    // is back in its usual mode when it runs.
    void read(const char* prompt, Line on_line);
    bool reading() const { return static_cast<bool>(on_line_); }
    // Stops editing at once (Ctrl-C at the prompt, quit): the terminal is restored and
    // `on_line` is not called.
    void cancel();
    // Appends this session's lines to the history file; closes the poll handle.
    void close();

    // $XDG_STATE_HOME/peerdex/history, or ~/.local/state/peerdex/history; made on demand.
    static std::string default_history_path();

private:
    static void on_readable(uv_poll_t* p, int status, int events);
    static void line_done(char* line);
    static char** on_complete(const char* text, int start, int end);

    uv_loop_t* loop_;
    uv_poll_t* poll_ = nullptr;
    std::string history_;
    Complete complete_;
    Line on_line_;
    int added_ = 0;  // lines to append to the history file
};

}  // namespace peerdex
