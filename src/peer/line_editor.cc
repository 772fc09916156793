#include "line_editor.hh"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <editline/readline.h>

namespace peerdex {

namespace {
constexpr int kHistoryLines = 1000;

LineEditor* g_editor = nullptr;  // the library calls back without a context pointer
std::vector<std::string> g_matches;

char* next_match(const char*, int state)
{
    static std::size_t i;
    if (state == 0)
        i = 0;
    return i < g_matches.size() ? ::strdup(g_matches[i++].c_str()) : nullptr;
}

int make_dirs(const std::string& path)  // mkdir -p of the directory part of `path`
{
    for (std::size_t i = 1; (i = path.find('/', i)) != std::string::npos; ++i)
        if (::mkdir(path.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST)
            return -1;
    return 0;
}
}  // namespace

std::string LineEditor::default_history_path()
{
    std::string dir;
    if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state == '/')
        dir = state;
    else if (const char* home = std::getenv("HOME"); home && *home)
        dir = std::string(home) + "/.local/state";
    else
        return "";
    return dir + "/peerdex/history";
}

LineEditor::LineEditor(uv_loop_t* loop, std::string history_path, Complete complete)
    : loop_(loop), history_(std::move(history_path)), complete_(std::move(complete))
{
    g_editor = this;
    rl_catch_signals = 0;  // SIGINT and SIGTERM belong to the loop's signal handles
    rl_attempted_completion_function = on_complete;
    using_history();
    stifle_history(kHistoryLines);
    if (!history_.empty())
        read_history(history_.c_str());  // none yet is fine
    poll_ = std::make_unique<uv_poll_t>().release();  // freed in its close callback
    uv_poll_init(loop_, poll_, STDIN_FILENO);
    poll_->data = this;
}

LineEditor::~LineEditor()
{
    close();
    g_editor = nullptr;
}

void LineEditor::read(const char* prompt, Line on_line)
{
    on_line_ = std::move(on_line);
    rl_callback_handler_install(prompt, line_done);
    uv_poll_start(poll_, UV_READABLE, on_readable);
}

void LineEditor::on_readable(uv_poll_t* p, int status, int)
{
    auto* self = static_cast<LineEditor*>(p->data);
    if (status < 0) {  // the terminal went away: end of input
        self->cancel();
        return;
    }
    rl_callback_read_char();  // calls on_line once a line is complete
}

void LineEditor::line_done(char* line)
{
    LineEditor* self = g_editor;
    std::unique_ptr<char, decltype(&std::free)> owned(line, &std::free);
    if (!self || !self->on_line_)
        return;
    uv_poll_stop(self->poll_);
    rl_callback_handler_remove();  // the terminal back in its usual mode while the command runs
    std::optional<std::string> text;
    if (line) {
        text = line;
        if (!text->empty()) {
            add_history(line);
            ++self->added_;
        }
    }
    Line done = std::move(self->on_line_);
    self->on_line_ = nullptr;
    done(std::move(text));
}

char** LineEditor::on_complete(const char* text, int start, int)
{
    LineEditor* self = g_editor;
    const std::string_view buffer = rl_line_buffer ? rl_line_buffer : "";
    const auto at = std::min<std::size_t>(static_cast<std::size_t>(start), buffer.size());
    const Completion c = self ? self->complete_(buffer.substr(0, at), text) : Completion{};
    if (c.files) {
        rl_attempted_completion_over = 0;  // the library's own file name completion
        return nullptr;
    }
    rl_attempted_completion_over = 1;
    if (c.words.empty())
        return nullptr;
    g_matches = c.words;
    return rl_completion_matches(text, next_match);
}

void LineEditor::cancel()
{
    if (!on_line_)
        return;
    on_line_ = nullptr;
    if (poll_)
        uv_poll_stop(poll_);
    rl_callback_handler_remove();
}

void LineEditor::close()
{
    cancel();
    if (!history_.empty() && added_ > 0 && make_dirs(history_) == 0) {
        if (::access(history_.c_str(), F_OK) != 0)
            write_history(history_.c_str());
        else
            append_history(added_, history_.c_str());
        history_truncate_file(history_.c_str(), kHistoryLines);
        added_ = 0;
    }
    if (poll_) {
        uv_close(reinterpret_cast<uv_handle_t*>(poll_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_poll_t> gone(reinterpret_cast<uv_poll_t*>(h)); });
        poll_ = nullptr;
    }
}

}  // namespace peerdex
