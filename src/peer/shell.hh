// The interactive shell of peerdex (peerdex-protocol(7), CONSOLE LINES): reads commands
// from a terminal or piped input, one at a time, and prints their contract lines on stdout;
// reasons for failures go to stderr. Everything runs on one loop with the peer listener.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "command.hh"
#include "download.hh"
#include "peer_server.hh"
#include "protocol.hh"
#include "search.hh"
#include "tracker_client.hh"

namespace peerdex {

struct ShellOptions {
    sockaddr_storage tracker{};
    std::string tracker_name;         // HOST:PORT as given: where this tracker's keys are filed
    std::string listen_addr;          // the peer listener's address (empty: every address)
    std::uint16_t listen_port = 0;    // 0: a free port between 1024 and 49151
    std::uint64_t timeout_ms = 10000; // tracker replies
    std::uint64_t stall_ms = 30000;   // downloads
    std::string clock_url;            // empty: no timestamps (course "part 1")
    bool quiet = false;
    bool verbose = false;             // connection details on stderr
    std::size_t search_walk = 1000;   // SEARCH without the tracker's: users whose LIST_CONTENT is read
    bool resume = true;               // --no-resume: GET_FILE drops what a cut download kept
    std::size_t upload_slots = 0;     // --upload-slots (0: no limit)
    std::uint64_t upload_rate = 0;    // --upload-rate, bytes per second (0: no limit)
    std::size_t sources = 4;          // --sources: peers one GET_FILE fetches from at once
};

class LineEditor;

class Shell {
public:
    Shell(uv_loop_t* loop, ShellOptions options);
    Shell(const Shell&) = delete;
    Shell& operator=(const Shell&) = delete;
    ~Shell();
    void start();
    // SIGTERM, or SIGINT at the prompt: QUIT once the command in progress is done (a
    // download in progress is cancelled first).
    void request_quit();
    // SIGINT: cancels the download in progress, if any; otherwise request_quit().
    void interrupt();
    // 0 when every command of the session succeeded, else 1.
    int exit_status() const { return failed_ ? 1 : 0; }

private:
    void read_input();
    void next();
    void run(const ParsedLine& line);
    void done();
    void print(const std::string& line);
    // Prints a command's result line and remembers a failure.
    void result(Command c, int code);
    // What the user typed, checked against the protocol's limits before anything is
    // sent; when it breaks one, says which, prints the command's FAIL line and is done.
    bool field_ok(Command c, const char* what, FieldKind kind, const std::string& value);
    bool args_ok(const ParsedLine& line);
    void warn(const std::string& why);
    void detail(const std::string& what);
    void prompt();
    // After a prompt that no Enter ended (Ctrl-D, Ctrl-C): a newline first.
    void leave_prompt_line();
    std::string absolute(const std::string& path) const;

    void simple(Command c, const std::string& user, std::vector<std::string> fields);
    void do_connect(const std::string& user);
    void do_disconnect(const std::string& user, bool then_quit);
    void do_publish(const std::string& path, const std::string& description);
    // The command needs a connected user: when there is none, says so, ends the command
    // with code 2 and returns true.
    bool refuse_unless_connected(Command c);
    void do_list(Command c, const std::string& target);
    // `id`: the publication's content id when a SEARCH hit gave it; otherwise a peerdex/2
    // session asks the tracker's LIST_CONTENT of `user` for it first.
    void do_get_file(const std::string& user, const std::string& remote, const std::string& local,
                     const std::string& id = "", bool id_known = false, const std::string& size = "");
    // PUBLISH's second half, once the file is hashed (size and id empty: not hashed).
    void hash_then_publish(const std::string& full, const std::string& description, std::uint64_t size);
    void publish_hashed(const std::string& full, const std::string& description, const std::string& size,
                        const std::string& id);
    // The tracker's SOURCES of content id `id` (peerdex/2), this client's user left out;
    // none when the tracker cannot say.
    void sources_of(const std::string& id, std::function<void(std::vector<Source>)> done);
    void do_search(const std::string& query);
    // A tracker without SEARCH (a course tracker): LIST_USERS, then the LIST_CONTENT of
    // each user in turn, matched with the same rules (paths only: it has no descriptions).
    void walk_search(const SearchQuery& query);
    void walk_next(std::shared_ptr<struct SearchWalk> walk);
    void show_hits(std::vector<std::string> lines);
    void do_get(const std::string& n, const std::string& local);
    void do_quit();
    void finish_quit();

    uv_loop_t* loop_;
    ShellOptions opt_;
    ClockClient clock_;
    KeyFiles keys_;  // before tracker_, which uses it
    TrackerClient tracker_;
    PeerServer peer_;
    std::string connected_;  // the user this client connected, if any
    Download::State* download_ = nullptr;  // the GET_FILE in progress
    std::unique_ptr<LineEditor> editor_;   // on a terminal, when built with line editing
    std::vector<std::string> users_seen_;  // in the last LIST_USERS, for Tab
    struct Hit {
        std::string user, path, id, size;  // id and size: known on a peerdex/2 session
    };
    struct Hashing;
    std::shared_ptr<Hashing> hashing_;  // PUBLISH's hash of a file in progress (Ctrl-C cancels)
    std::vector<Hit> hits_;      // of the last SEARCH, for GET <n>
    bool walk_said_ = false;     // the note on searching a course tracker was given
    bool failed_ = false;        // a command of this session failed
    bool prompt_pending_ = false;  // a prompt is on the terminal, no line typed after it
    std::string input_;      // read but not yet run
    char buf_[4096];
    uv_fs_t read_req_{};
    bool reading_ = false;
    bool eof_ = false;
    bool busy_ = false;
    bool quitting_ = false;
    bool quit_requested_ = false;
    bool tty_;
};

}  // namespace peerdex
