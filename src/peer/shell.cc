#include "shell.hh"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "address.hh"
#include "files.hh"

#ifdef PEERDEX_CONTENT_IDS
#include <atomic>

#include "content_tree.hh"
#endif
#ifdef PEERDEX_LINE_EDITING
#include "line_editor.hh"
#else
namespace peerdex {
class LineEditor {};  // never made: only its destructor is named (by the unique_ptr)
}  // namespace peerdex
#endif

namespace peerdex {

namespace {
// Input without a newline for this long is not a command line.
constexpr std::size_t kMaxLineBytes = 64 * 1024;
// PUBLISH shows the hashing's progress on a terminal from this size on.
constexpr std::uint64_t kShowHashProgressBytes = 64ull << 20;
// A clock slower than this is replaced by the local clock.
constexpr std::uint64_t kClockTimeoutMs = 2000;

bool parse_endpoint(const std::string& ip, const std::string& port, sockaddr_storage& out)
{
    auto p = parse_port(port);
    if (!p)
        return false;
    return uv_ip4_addr(ip.c_str(), *p, reinterpret_cast<sockaddr_in*>(&out)) == 0 ||
           uv_ip6_addr(ip.c_str(), *p, reinterpret_cast<sockaddr_in6*>(&out)) == 0;
}
}  // namespace

#ifdef PEERDEX_CONTENT_IDS
// The file is hashed once (peerdex-protocol(7), CONTENT IDS), on the pool: from the cache
// when it is unchanged, else read whole, with a progress line on a terminal for large files
// and Ctrl-C to give up. Its id then goes with PUBLISH on a peerdex/2 session, and its tree
// is what GET_TREE serves.
struct Shell::Hashing {
    uv_work_t work{};
    uv_timer_t timer{};
    Shell* shell = nullptr;
    std::string full, description, cache, error;
    std::uint64_t size = 0;
    std::atomic<std::uint64_t> done{0};
    std::atomic<bool> cancel{false};
    ContentTree tree;
    HashResult outcome = HashResult::failed;
    bool cached = false, drawn = false;
    std::uint64_t started = 0;
    std::shared_ptr<Hashing> self;  // alive until the timer handle is closed
};

#endif

Shell::Shell(uv_loop_t* loop, ShellOptions options)
    : loop_(loop), opt_(std::move(options)), clock_(loop, opt_.clock_url, kClockTimeoutMs, opt_.quiet),
      keys_(opt_.tracker_name.empty() ? endpoint_string(reinterpret_cast<const sockaddr*>(&opt_.tracker))
                                      : opt_.tracker_name),
      tracker_(loop, opt_.tracker, opt_.timeout_ms, &clock_),
      peer_(loop, opt_.listen_addr, opt_.listen_port), tty_(isatty(STDIN_FILENO) != 0)
{
    tracker_.set_keys(&keys_);
    peer_.set_upload_limits(opt_.upload_slots, opt_.upload_rate);
#ifdef PEERDEX_CONTENT_IDS
    peer_.set_tree_cache(tree_cache_dir());
#endif
#ifdef PEERDEX_LINE_EDITING
    if (tty_ && isatty(STDOUT_FILENO))
        editor_ = std::make_unique<LineEditor>(loop_, LineEditor::default_history_path(),
                                               [this](std::string_view before, std::string_view word) {
                                                   return complete(before, word, users_seen_);
                                               });
#endif
}

Shell::~Shell() = default;

void Shell::start()
{
    next();
}

void Shell::print(const std::string& line)
{
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void Shell::result(Command c, int code)
{
    if (!tracker_.key_problem().empty())
        warn(tracker_.key_problem());
    if (code > 0 && tracker_.not_owner())
        warn(std::string(command_name(c)) + ": the tracker keeps this user for another client (the address or the "
             "key that registered it): it refuses changes to it from here (peerdex-protocol(7), OWNERSHIP)");
    if (code != 0)
        failed_ = true;
    print(result_line(c, code));
}

bool Shell::field_ok(Command c, const char* what, FieldKind kind, const std::string& value)
{
    std::string problem = field_problem(kind, value);
    if (problem.empty() && kind == FieldKind::path && !value.empty() && (value[0] == '"' || value[0] == '\''))
        problem = "starts with a quote: paths cannot contain spaces, quoted or not";
    if (problem.empty())
        return true;
    warn(std::string(command_name(c)) + ": the " + what + " " + problem + " (peerdex-protocol(7), TRACKER REQUESTS)");
    result(c, -1);
    done();
    return false;
}

bool Shell::args_ok(const ParsedLine& line)
{
    const Command c = line.command;
    const auto& a = line.args;
    switch (c) {
    case Command::register_user:
    case Command::unregister_user:
    case Command::connect:
    case Command::disconnect:
    case Command::list_content:
        return field_ok(c, "user name", FieldKind::user, a[0]);
    case Command::publish:
        return field_ok(c, "path", FieldKind::path, a[0]) && field_ok(c, "description", FieldKind::description, a[1]);
    case Command::remove:
        return field_ok(c, "path", FieldKind::path, a[0]);
    case Command::get_file:
        return field_ok(c, "user name", FieldKind::user, a[0]) && field_ok(c, "remote path", FieldKind::path, a[1]);
    case Command::list_users:
    case Command::search:  // its query is judged by do_search
    case Command::get:
    case Command::stats:
    case Command::help:
    case Command::quit:
        return true;
    }
    return true;
}

void Shell::warn(const std::string& why)
{
    if (!opt_.quiet)
        std::fprintf(stderr, "peerdex: %s\n", why.c_str());
}

void Shell::detail(const std::string& what)
{
    if (opt_.verbose)
        std::fprintf(stderr, "peerdex: %s\n", what.c_str());
}

void Shell::leave_prompt_line()
{
    if (prompt_pending_)
        std::fputc('\n', stdout);  // the next output on a line of its own
    prompt_pending_ = false;
}

void Shell::prompt()
{
    if (tty_ && !editor_) {  // the line editor shows its own
        std::fputs("c> ", stdout);
        std::fflush(stdout);
        prompt_pending_ = true;
    }
}

// Runs the next complete line, or reads more input.
void Shell::next()
{
    if (busy_ || quitting_)
        return;
    if (quit_requested_) {
        do_quit();
        return;
    }
    const auto nl = input_.find('\n');
    if (nl != std::string::npos) {
        const std::string line = input_.substr(0, nl);
        input_.erase(0, nl + 1);
        run(parse_line(line));
        return;
    }
    if (eof_) {
        if (!input_.empty()) {  // a last line without its newline
            std::string line;
            line.swap(input_);
            run(parse_line(line));
            return;
        }
        leave_prompt_line();  // Ctrl-D left the cursor there
        do_quit();  // end of input = QUIT
        return;
    }
    if (input_.size() > kMaxLineBytes) {
        warn("input line too long; ignored");
        input_.clear();
    }
    read_input();
}

void Shell::read_input()
{
#ifdef PEERDEX_LINE_EDITING
    if (editor_) {
        if (editor_->reading())
            return;
        prompt_pending_ = true;
        editor_->read("c> ", [this](std::optional<std::string> line) {
            if (line) {
                prompt_pending_ = false;  // Enter ended the line
                input_ += *line + "\n";
            } else {
                eof_ = true;  // Ctrl-D: the cursor is still on the prompt's line
            }
            next();
        });
        return;
    }
#endif
    if (reading_)
        return;
    if (input_.empty())
        prompt();
    reading_ = true;
    read_req_.data = this;
    uv_buf_t b = uv_buf_init(buf_, sizeof buf_);
    // The thread pool reads stdin: it works alike for terminals, pipes and files.
    uv_fs_read(loop_, &read_req_, STDIN_FILENO, &b, 1, -1, [](uv_fs_t* req) {
        auto* self = static_cast<Shell*>(req->data);
        const auto n = req->result;
        uv_fs_req_cleanup(req);
        self->reading_ = false;
        if (n <= 0) {
            self->eof_ = true;
        } else {
            self->input_.append(self->buf_, static_cast<std::size_t>(n));
            self->prompt_pending_ = false;  // the terminal echoed the newline
        }
        self->next();
    });
}

void Shell::done()
{
    busy_ = false;
    next();
}

void Shell::request_quit()
{
    quit_requested_ = true;
    if (download_)
        Download::cancel(download_);  // its FAIL line, then QUIT
#ifdef PEERDEX_CONTENT_IDS
    if (hashing_)
        hashing_->cancel = true;
#endif
#ifdef PEERDEX_LINE_EDITING
    if (editor_)
        editor_->cancel();  // Ctrl-C at the prompt: the terminal back to normal first
#endif
    if (!busy_) {
        leave_prompt_line();  // ^C left the cursor there
        do_quit();
    }
}

void Shell::interrupt()
{
#ifdef PEERDEX_CONTENT_IDS
    if (hashing_ && !hashing_->cancel) {
        hashing_->cancel = true;  // back to the prompt; a second Ctrl-C quits
        return;
    }
#endif
    if (download_) {
        Download::cancel(download_);  // back to the prompt; a second Ctrl-C quits
        return;
    }
    request_quit();
}

std::string Shell::absolute(const std::string& path) const
{
    std::string full = path;
    if (path.empty() || path[0] != '/') {
        char cwd[4096];
        full = std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + path;
    }
    // Lexical clean-up only ("." and ".." and repeated "/"): PUBLISH and DELETE of the
    // same relative path then name the same published string.
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i <= full.size()) {
        const std::size_t j = std::min(full.find('/', i), full.size());
        const std::string part = full.substr(i, j - i);
        if (part == "..") {
            if (!parts.empty())
                parts.pop_back();
        } else if (!part.empty() && part != ".") {
            parts.push_back(part);
        }
        i = j + 1;
    }
    std::string out;
    for (const auto& p : parts)
        out += "/" + p;
    return out.empty() ? "/" : out;
}

void Shell::run(const ParsedLine& line)
{
    switch (line.kind) {
    case ParsedLine::Kind::empty:
        next();
        return;
    case ParsedLine::Kind::unknown:
        failed_ = true;
        print(unknown_command_line(line.word));
        next();
        return;
    case ParsedLine::Kind::syntax_error:
        failed_ = true;
        print(syntax_error_line(line.command));
        next();
        return;
    case ParsedLine::Kind::command:
        break;
    }
    busy_ = true;
    if (!args_ok(line))
        return;
    const auto& a = line.args;
    switch (line.command) {
    case Command::register_user:
        simple(Command::register_user, a[0], {"REGISTER", a[0]});
        return;
    case Command::unregister_user:
        simple(Command::unregister_user, a[0], {"UNREGISTER", a[0]});
        return;
    case Command::connect:
        do_connect(a[0]);
        return;
    case Command::disconnect:
        do_disconnect(a[0], false);
        return;
    case Command::publish:
        do_publish(a[0], a[1]);
        return;
    case Command::remove:
        if (refuse_unless_connected(Command::remove))
            return;
        {
            const std::string path = absolute(a[0]);
            if (!field_ok(Command::remove, "absolute path", FieldKind::path, path))
                return;
            tracker_.call({"DELETE", connected_, path}, TrackerClient::Shape::code_only, 0,
                          [this, path](int code, const ReplyDecoder&) {
                              if (code < 0)
                                  warn(tracker_.why());
                              if (code == 0)
                                  peer_.unpublish(path);
                              result(Command::remove, code);
                              done();
                          });
        }
        return;
    case Command::list_users:
        do_list(Command::list_users, "");
        return;
    case Command::list_content:
        do_list(Command::list_content, a[0]);
        return;
    case Command::get_file:
        do_get_file(a[0], a[1], a[2]);
        return;
    case Command::search:
        do_search(a[0]);
        return;
    case Command::get:
        do_get(a[0], a.size() > 1 ? a[1] : std::string());
        return;
    case Command::stats:
        // This client's peer listener: counters since it first listened.
        result(Command::stats, 0);
        {
            const std::string text = peer_.stats_text();
            for (std::size_t b = 0, e; (e = text.find('\n', b)) != std::string::npos; b = e + 1)
                print("\t" + text.substr(b, e - b));
        }
        done();
        return;
    case Command::help:
        for (const auto& l : help_lines())
            print(l);
        done();
        return;
    case Command::quit:
        do_quit();
        return;
    }
}

void Shell::simple(Command c, const std::string& user, std::vector<std::string> fields)
{
    tracker_.call(std::move(fields), TrackerClient::Shape::code_only, 0, [this, c, user](int code, const ReplyDecoder&) {
        if (code < 0)
            warn(tracker_.why());
        if (c == Command::unregister_user && code == 0)
            keys_.forget(user);  // the name is free: its key proves nothing any more
        if (c == Command::unregister_user && code == 0 && user == connected_) {
            peer_.stop();  // the tracker forgot the user: stop serving its files
            connected_.clear();
        }
        result(c, code);
        done();
    });
}

void Shell::do_connect(const std::string& user)
{
    auto connect_now = [this, user]() {
        if (const int rc = peer_.start(); rc != 0) {
            warn("cannot start the peer listener" +
                 (opt_.listen_addr.empty() ? std::string() : " on " + opt_.listen_addr) + ": " + uv_strerror(rc));
            result(Command::connect, 3);
            done();
            return;
        }
        tracker_.call({"CONNECT", user, std::to_string(peer_.port())}, TrackerClient::Shape::code_only, 0,
                      [this, user](int code, const ReplyDecoder&) {
                          if (code != 0) {
                              if (code < 0)
                                  warn(tracker_.why());
                              if (code == 2)
                                  warn("CONNECT: " + user + " is connected from another client, or from one that "
                                       "ended without DISCONNECT; if that client is gone, run DISCONNECT " + user +
                                       " here, then CONNECT " + user + " again");
                              peer_.stop();
                              result(Command::connect, code);
                              done();
                              return;
                          }
                          connected_ = user;
                          detail("serving files on port " + std::to_string(peer_.port()) + "; tracker " +
                                 (tracker_.sessions() ? "speaks HELLO: one session" : "is canonical: one "
                                                                                      "connection per operation"));
                          // Serve what the tracker says this user published, even in an earlier session.
                          tracker_.call({"LIST_CONTENT", user, user}, TrackerClient::Shape::list, 1,
                                        [this](int c2, const ReplyDecoder& r) {
                                            const std::size_t per = tracker_.v2() ? 4 : 1;  // the path first
                                            std::unordered_set<std::string> paths;
                                            const auto& f = r.fields();
                                            for (std::size_t i = 0; i + per <= f.size(); i += per)
                                                paths.insert(f[i]);
                                            if (c2 == 0)
                                                peer_.set_published(std::move(paths));
                                            result(Command::connect, 0);
                                            done();
                                        });
                      });
    };
    if (!connected_.empty() && connected_ != user) {
        // One user per client: the one connected before is disconnected first.
        tracker_.call({"DISCONNECT", connected_}, TrackerClient::Shape::code_only, 0,
                      [this, connect_now](int, const ReplyDecoder&) {
                          peer_.stop();
                          connected_.clear();
                          connect_now();
                      });
        return;
    }
    connect_now();
}

void Shell::do_disconnect(const std::string& user, bool then_quit)
{
    tracker_.call({"DISCONNECT", user}, TrackerClient::Shape::code_only, 0,
                  [this, user, then_quit](int code, const ReplyDecoder&) {
                      if (code < 0)
                          warn(tracker_.why());
                      if (user == connected_) {
                          peer_.stop();  // even when the tracker refused or was unreachable
                          connected_.clear();
                      }
                      result(Command::disconnect, code);
                      if (then_quit)
                          finish_quit();
                      else
                          done();
                  });
}

void Shell::do_publish(const std::string& path, const std::string& description)
{
    const std::string full = absolute(path);
    if (!field_ok(Command::publish, "absolute path", FieldKind::path, full))
        return;
    struct stat st {};
    const char* refused = ::stat(full.c_str(), &st) != 0       ? " does not exist"
                          : !S_ISREG(st.st_mode)                ? " is not a regular file"
                          : ::access(full.c_str(), R_OK) != 0   ? " is not readable"
                                                                : nullptr;
    if (refused) {
        warn("PUBLISH: " + full + refused);
        result(Command::publish, 4);
        done();
        return;
    }
    if (refuse_unless_connected(Command::publish))
        return;
#ifdef PEERDEX_CONTENT_IDS
    hash_then_publish(full, description, static_cast<std::uint64_t>(st.st_size));
#else
    publish_hashed(full, description, "", "");
#endif
}

#ifdef PEERDEX_CONTENT_IDS
void Shell::hash_then_publish(const std::string& full, const std::string& description, std::uint64_t size)
{
    auto h = std::make_shared<Hashing>();
    h->shell = this;
    h->full = full;
    h->description = description;
    h->size = size;
    h->cache = tree_cache_dir();
    h->self = h;
    h->work.data = h.get();
    h->timer.data = h.get();
    h->started = uv_now(loop_);
    hashing_ = h;
    uv_timer_init(loop_, &h->timer);
    if (!opt_.quiet && isatty(STDERR_FILENO) && size >= kShowHashProgressBytes)
        uv_timer_start(
            &h->timer,
            [](uv_timer_t* t) {
                auto* me = static_cast<Hashing*>(t->data);
                me->drawn = true;
                std::fputs(progress_redraw(progress_line("hashing " + me->full, me->done, me->size,
                                                         uv_now(t->loop) - me->started),
                                           false)
                               .c_str(),
                           stderr);
            },
            200, 200);
    uv_queue_work(
        loop_, &h->work,
        [](uv_work_t* w) {
            auto* me = static_cast<Hashing*>(w->data);
            me->outcome = tree_of(me->full, me->cache, me->tree, me->cached, me->error, [me](std::uint64_t n) {
                me->done = n;
                return !me->cancel.load();
            });
        },
        [](uv_work_t* w, int) {
            auto* me = static_cast<Hashing*>(w->data);
            Shell* sh = me->shell;
            sh->hashing_.reset();
            if (me->drawn)
                std::fputs(progress_redraw(progress_line("hashing " + me->full, me->done, me->size,
                                                         uv_now(sh->loop_) - me->started),
                                           true)
                               .c_str(),
                           stderr);
            uv_close(reinterpret_cast<uv_handle_t*>(&me->timer),
                     [](uv_handle_t* t) { static_cast<Hashing*>(t->data)->self.reset(); });
            // Cancelled, even if the tree came from the cache before the cancel was seen.
            if (me->outcome == HashResult::cancelled || me->cancel) {
                sh->warn("PUBLISH: interrupted while hashing " + me->full + "; nothing was published");
                sh->result(Command::publish, 4);
                sh->done();
                return;
            }
            if (me->outcome != HashResult::ok) {
                sh->warn("PUBLISH: cannot hash " + me->full + ": " + me->error);
                sh->result(Command::publish, 4);
                sh->done();
                return;
            }
            sh->detail("PUBLISH: " + me->full + " is " + content_id_text(me->tree.root) +
                       (me->cached ? " (known from the cache)" : ""));
            sh->publish_hashed(me->full, me->description, std::to_string(me->tree.size),
                               content_id_text(me->tree.root));
        });
}
#endif

void Shell::publish_hashed(const std::string& full, const std::string& description, const std::string& size,
                           const std::string& id)
{
    tracker_.call({"PUBLISH", connected_, full, description}, TrackerClient::Shape::code_only, 0,
                  [this, full](int code, const ReplyDecoder&) {
                      if (code < 0)
                          warn(tracker_.why());
                      if (code == 0)
                          peer_.publish(full);
                      result(Command::publish, code);
                      done();
                  },
                  TrackerClient::V2{{size, id}, -1});
}

bool Shell::refuse_unless_connected(Command c)
{
    if (!connected_.empty())
        return false;
    warn(std::string(command_name(c)) + ": no user is connected in this client (CONNECT <user> first)");
    result(c, 2);
    done();
    return true;
}

void Shell::do_list(Command c, const std::string& target)
{
    if (refuse_unless_connected(c))
        return;
    std::vector<std::string> fields{std::string(command_name(c)), connected_};
    if (c == Command::list_content)
        fields.push_back(target);
    const int per = c == Command::list_users ? 3 : 1;
    tracker_.call(std::move(fields), TrackerClient::Shape::list, per, [this, c, per](int code, const ReplyDecoder& r) {
        if (code < 0)
            warn(tracker_.why());
        result(c, code);
        if (code == 0 && c == Command::list_users) {
            users_seen_.clear();
            for (std::size_t i = 0; i + 3 <= r.fields().size(); i += 3)
                users_seen_.push_back(r.fields()[i]);
        }
        if (code == 0) {
            const auto& f = r.fields();
            // peerdex/2's LIST_CONTENT entries also carry description, size and id: the
            // lines stay those of CONSOLE LINES.
            const std::size_t step = c == Command::list_content && tracker_.v2() ? 4 : static_cast<std::size_t>(per);
            for (std::size_t i = 0; i + step <= f.size(); i += step)
                print(per == 3 ? "\t" + f[i] + " " + f[i + 1] + " " + f[i + 2] : "\t" + f[i]);
        }
        done();
    });
}

void Shell::do_get_file(const std::string& user, const std::string& remote, const std::string& local,
                        const std::string& id, bool id_known, const std::string& size)
{
    if (refuse_unless_connected(Command::get_file))
        return;
#ifdef PEERDEX_CONTENT_IDS
    if (!id_known && tracker_.v2()) {
        // The id the owner published: the peer must serve exactly that file.
        tracker_.call({"LIST_CONTENT", connected_, user}, TrackerClient::Shape::list, 1,
                      [this, user, remote, local](int code, const ReplyDecoder& r) {
                          std::string found, found_size;
                          const auto& f = r.fields();
                          if (code == 0 && tracker_.v2())
                              for (std::size_t i = 0; i + 4 <= f.size(); i += 4)
                                  if (f[i] == remote) {
                                      found = f[i + 3];
                                      found_size = f[i + 2];
                                      break;
                                  }
                          // A refusal is the next request's to report (GET_USER_INFO's codes).
                          do_get_file(user, remote, local, found, true, found_size);
                      });
        return;
    }
#else
    (void)id_known;
#endif
    std::string no_target;
    const std::string target = Download::target(remote, local, no_target);
    const std::string full = target.empty() ? "" : absolute(target);
    if (target.empty() || peer_.published(full)) {
        // Checked before anything moves: a download must not replace what this user shares.
        warn("GET_FILE: " + (target.empty() ? no_target
                                            : full + " is a file you publish; download it under another name, "
                                                     "or DELETE it first"));
        result(Command::get_file, -1);
        done();
        return;
    }
    auto download = [this, user, remote, target, size](const std::string& ip, const std::string& port,
                                                       const std::string& expected) {
        sockaddr_storage addr{};
        if (!parse_endpoint(ip, port, addr)) {
            warn("GET_FILE: the tracker gave an unusable address " + ip + " " + port);
            result(Command::get_file, 2);
            done();
            return;
        }
        detail("GET_FILE " + remote + " from " + ip + " port " + port + " into " + target);
        auto d = std::make_shared<DownloadOptions>();
        d->stall_ms = opt_.stall_ms;
        d->progress = !opt_.quiet && isatty(STDERR_FILENO);
        d->resume = opt_.resume;
        d->expected_id = expected;
        if (!expected.empty() && !size.empty())
            d->expected_size = parse_decimal(size, UINT64_MAX);
        d->peer = user + "'s peer at " + endpoint_string(reinterpret_cast<const sockaddr*>(&addr));
        auto start = [this, d, addr, remote, target](std::vector<Source> more) {
            if (!more.empty() || d->max_sources > 1)
                detail("GET_FILE: " + std::to_string(more.size() + 1) + " known sources of " + d->expected_id);
            d->sources = std::move(more);
            download_ = Download::start(loop_, addr, remote, target, std::move(*d),
                        [this, target](Download::Result res, const std::string& reason, const DownloadInfo& info) {
                            download_ = nullptr;
                            if (res == Download::Result::not_found)
                                warn("GET_FILE: the peer has no such published file");
                            else if (res == Download::Result::cancelled)
                                warn(info.kept ? "GET_FILE: interrupted" : "GET_FILE: interrupted; nothing was kept");
                            else if (res != Download::Result::ok)
                                warn("GET_FILE: " + reason);
                            if (res != Download::Result::ok && info.kept)
                                warn("GET_FILE: the " + human_size(static_cast<double>(info.kept)) +
                                     " verified so far are kept: the same GET_FILE resumes");
                            if (res == Download::Result::ok && info.reused)
                                warn("GET_FILE: resumed " + target + ": " +
                                       human_size(static_cast<double>(info.reused)) + " of " +
                                       human_size(static_cast<double>(info.size)) + " were already here, verified");
                            if (res == Download::Result::ok && info.sources > 1)
                                detail("GET_FILE: " + std::to_string(info.received) + " bytes from " +
                                       std::to_string(info.sources) + " sources");
                            result(Command::get_file, res == Download::Result::ok          ? 0
                                                                 : res == Download::Result::not_found ? 1
                                                                                                      : 2);
                            done();
                        });
        };
#ifdef PEERDEX_CONTENT_IDS
        if (!expected.empty() && tracker_.v2() && opt_.sources > 1) {
            // Every peer that published the same id is a source too; the tracker is asked
            // again while the download runs, so that peers that join are used.
            d->max_sources = opt_.sources;
            d->note = [this](const std::string& what) { warn("GET_FILE: " + what); };
            d->refresh = [this, expected](std::function<void(std::vector<Source>)> answer) {
                if (tracker_.busy())
                    answer({});
                else
                    sources_of(expected, std::move(answer));
            };
            sources_of(expected, start);
            return;
        }
#endif
        start({});
    };
    auto fail = [this](const std::string& why) {
        warn("GET_FILE: " + why);
        result(Command::get_file, 2);
        done();
    };
    if (tracker_.sessions()) {
        tracker_.call({"GET_USER_INFO", connected_, user}, TrackerClient::Shape::fields, 2,
                      [this, user, id, download, fail](int code, const ReplyDecoder& r) {
                          if (code != 0)
                              fail(code < 0 ? tracker_.why() : "the tracker has no connected user " + user);
                          else
                              download(r.fields()[0], r.fields()[1], id);
                      });
        return;
    }
    // A canonical tracker has no GET_USER_INFO: find the owner in LIST_USERS.
    tracker_.call({"LIST_USERS", connected_}, TrackerClient::Shape::list, 3,
                  [this, user, download, fail](int code, const ReplyDecoder& r) {
                      if (code != 0) {
                          fail(code < 0 ? tracker_.why() : "LIST_USERS refused");
                          return;
                      }
                      const auto& f = r.fields();
                      for (std::size_t i = 0; i + 3 <= f.size(); i += 3)
                          if (f[i] == user) {
                              download(f[i + 1], f[i + 2], "");
                              return;
                          }
                      fail("the tracker has no connected user " + user);
                  });
}

void Shell::sources_of(const std::string& id, std::function<void(std::vector<Source>)> done)
{
    // Twice the sources used at once: spares for those that leave or lie.
    const std::size_t limit = std::min<std::size_t>(2 * opt_.sources, 1000);
    tracker_.call({"SOURCES", connected_, id, std::to_string(limit)}, TrackerClient::Shape::list, 5,
                  [this, done = std::move(done)](int code, const ReplyDecoder& r) {
                      std::vector<Source> out;
                      const auto& f = r.fields();
                      if (code != 0)
                          detail("SOURCES: " + (code < 0 ? tracker_.why() : "refused, code " + std::to_string(code)));
                      for (std::size_t i = 0; code == 0 && i + 5 <= f.size(); i += 5) {
                          Source s;
                          if (f[i] == connected_ || !parse_endpoint(f[i + 1], f[i + 2], s.addr))
                              continue;
                          s.name = f[i] + "'s peer at " + endpoint_string(reinterpret_cast<const sockaddr*>(&s.addr));
                          s.path = f[i + 3];
                          out.push_back(std::move(s));
                      }
                      done(std::move(out));
                  });
}

// The most hits a SEARCH asks for (a peerdex tracker caps it with --max-results).
constexpr unsigned kSearchLimit = kDefaultMaxResults;

void Shell::do_search(const std::string& query)
{
    SearchQuery q;
    if (const QueryFault f = parse_query(query, q); f != QueryFault::none) {
        warn(std::string("SEARCH: the query ") + query_fault_text(f) + " (peerdex-protocol(7), SEARCH)");
        result(Command::search, -1);
        done();
        return;
    }
    if (refuse_unless_connected(Command::search))
        return;
    if (!tracker_.sessions()) {
        walk_search(q);
        return;
    }
    tracker_.call({"SEARCH", connected_, query, std::to_string(kSearchLimit)}, TrackerClient::Shape::list, 5,
                  [this](int code, const ReplyDecoder& r) {
                      const std::size_t per = tracker_.v2() ? 7 : 5;  // peerdex/2: size and id too
                      if (code < 0)
                          warn(tracker_.why());
                      if (code != 0) {
                          result(Command::search, code);
                          done();
                          return;
                      }
                      hits_.clear();
                      std::vector<std::string> lines;
                      const auto& f = r.fields();
                      for (std::size_t i = 0; i + per <= f.size(); i += per) {
                          hits_.push_back({f[i], f[i + 3], per == 7 ? f[i + 6] : "", per == 7 ? f[i + 5] : ""});
                          lines.push_back("\t" + f[i] + " " + f[i + 3] + " " + f[i + 4]);
                      }
                      show_hits(std::move(lines));
                  });
}

void Shell::show_hits(std::vector<std::string> lines)
{
    result(Command::search, 0);
    for (const auto& l : lines)
        print(l);
    done();
}

struct SearchWalk {
    SearchQuery query;
    std::vector<std::string> users;
    std::size_t next = 0;
    std::vector<std::pair<std::string, std::string>> names, others;  // (user, path)
};

void Shell::walk_search(const SearchQuery& query)
{
    if (!walk_said_) {
        warn("SEARCH: this tracker has no SEARCH (a course tracker): searching the LIST_CONTENT of up to " +
             std::to_string(opt_.search_walk) + " connected users (--search-walk); it carries no descriptions, "
             "so only paths match");
        walk_said_ = true;
    }
    auto walk = std::make_shared<SearchWalk>();
    walk->query = query;
    tracker_.call({"LIST_USERS", connected_}, TrackerClient::Shape::list, 3, [this, walk](int code, const ReplyDecoder& r) {
        if (code != 0) {
            if (code < 0)
                warn(tracker_.why());
            result(Command::search, code);  // LIST_USERS's 1 and 2 mean what SEARCH's do
            done();
            return;
        }
        const auto& f = r.fields();
        for (std::size_t i = 0; i + 3 <= f.size() && walk->users.size() < opt_.search_walk; i += 3)
            walk->users.push_back(f[i]);
        if (f.size() / 3 > walk->users.size())
            warn("SEARCH: searched the first " + std::to_string(walk->users.size()) + " of " +
                 std::to_string(f.size() / 3) + " connected users (--search-walk)");
        walk_next(walk);
    });
}

void Shell::walk_next(std::shared_ptr<SearchWalk> walk)
{
    if (walk->next == walk->users.size()) {
        hits_.clear();
        std::vector<std::string> lines;
        for (const auto* group : {&walk->names, &walk->others})
            for (const auto& [user, path] : *group) {
                if (hits_.size() == kSearchLimit)
                    break;
                hits_.push_back({user, path, "", ""});
                lines.push_back("\t" + user + " " + path + " ");
            }
        show_hits(std::move(lines));
        return;
    }
    const std::string user = walk->users[walk->next++];
    tracker_.call({"LIST_CONTENT", connected_, user}, TrackerClient::Shape::list, 1,
                  [this, walk, user](int code, const ReplyDecoder& r) {
                      if (code < 0) {
                          warn(tracker_.why());
                          result(Command::search, code);
                          done();
                          return;
                      }
                      // A user gone since LIST_USERS (code 3) is skipped. Newest first
                      // within each user: the tracker lists in publication order.
                      const auto& paths = r.fields();
                      for (auto it = paths.rbegin(); code == 0 && it != paths.rend(); ++it) {
                          const Match m = match(walk->query, *it, "");
                          if (m == Match::name)
                              walk->names.emplace_back(user, *it);
                          else if (m == Match::other)
                              walk->others.emplace_back(user, *it);
                      }
                      walk_next(walk);
                  });
}

void Shell::do_get(const std::string& n, const std::string& local)
{
    const std::size_t i = std::strtoul(n.c_str(), nullptr, 10);
    if (n.find_first_not_of("0123456789") != std::string::npos || i == 0 || i > hits_.size()) {
        warn(hits_.empty() ? "GET: no hits to take from: SEARCH first, then GET <n> for its n-th hit"
                           : "GET: '" + n + "' is not a hit of the last SEARCH: give 1 to " +
                                 std::to_string(hits_.size()));
        result(Command::get_file, -1);
        done();
        return;
    }
    const Hit hit = hits_[i - 1];
    detail("GET " + n + ": GET_FILE " + hit.user + " " + hit.path);
    do_get_file(hit.user, hit.path, local, hit.id, !hit.id.empty(), hit.size);
}

void Shell::do_quit()
{
    if (quitting_)
        return;
    quitting_ = true;
    busy_ = true;
    if (!connected_.empty()) {
        do_disconnect(connected_, true);  // its result line comes first
        return;
    }
    finish_quit();
}

void Shell::finish_quit()
{
#ifdef PEERDEX_LINE_EDITING
    if (editor_)
        editor_->close();  // saves the history
#endif
    peer_.stop();
    result(Command::quit, 0);
    tracker_.close();
    clock_.close();
    if (reading_) {
        // A read of stdin is blocked in the thread pool (a terminal): nothing more to do.
        std::fflush(stdout);
        std::_Exit(0);
    }
}

}  // namespace peerdex
