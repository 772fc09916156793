// Talks to the tracker on the client's loop: a HELLO session (peerdex-protocol(7),
// SESSIONS) when the tracker speaks it, otherwise one connection per operation for the
// rest of the process. One call at a time: the shell is sequential.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <functional>
#include <string>
#include <vector>

#include "clock_client.hh"
#include "keys.hh"
#include "reply.hh"

namespace peerdex {

class TrackerClient {
public:
    enum class Shape { code_only, list, fields };
    // code < 0: the tracker could not be reached or answered nonsense; why() says why.
    using Done = std::function<void(int code, const ReplyDecoder& reply)>;

    // With a clock, every request carries its timestamp right after the OP.
    TrackerClient(uv_loop_t* loop, const sockaddr_storage& tracker, std::uint64_t timeout_ms, ClockClient* clock);
    TrackerClient(const TrackerClient&) = delete;
    TrackerClient& operator=(const TrackerClient&) = delete;
    ~TrackerClient();

    // What a request becomes on a peerdex/2 session (peerdex-protocol(7), SESSIONS): more
    // fields after the others (PUBLISH's size and id), and another number of fields per
    // entry or reply (LIST_CONTENT, SEARCH); n < 0 keeps the call's.
    struct V2 {
        std::vector<std::string> extra;
        int n = -1;
    };
    // Sends one request (its fields, NUL-terminated on the wire, in one write).
    void call(std::vector<std::string> fields, Shape shape, int n, Done done, V2 v2);
    // The same with the V2 shape of the operation: LIST_CONTENT's and SEARCH's wider
    // entries on a peerdex/2 session.
    void call(std::vector<std::string> fields, Shape shape, int n, Done done);
    bool sessions() const { return mode_ == Mode::hello; }
    // A call is under way (the next must wait for its Done).
    bool busy() const { return busy_; }
    // The session speaks peerdex/2: the call's reply (in its Done) has the V2 shape.
    bool v2() const { return mode_ == Mode::hello && version_ == 2; }
    // With keys, every change of a user (REGISTER, CONNECT, PUBLISH, DELETE, DISCONNECT,
    // UNREGISTER) on a HELLO session is preceded by OWN with that user's key (or none),
    // once per session and key (peerdex-protocol(7), OWNERSHIP); REGISTER makes the key
    // when there is none.
    void set_keys(KeyFiles* keys) { keys_ = keys; }
    // The last call acted on a user the tracker said belongs to another client.
    bool not_owner() const { return not_owner_; }
    // Why a key could not be read or made for the last call (empty: nothing to say).
    const std::string& key_problem() const { return key_problem_; }
    const std::string& why() const { return why_; }
    // Closes the session and every handle; the loop can then end.
    void close();

private:
    enum class Mode { unknown, hello, canonical };
    struct Conn;

    void start();
    void build();  // request_ from fields_, for the session's version
    void open(bool hello);
    void on_connected(Conn* c, int status);
    void on_data(Conn* c, const char* p, const char* end);
    void on_eof(Conn* c);
    // Writes one request (HELLO, OWN or the call's).
    void send(const std::string& bytes);
    // Sends OWN first when the call needs it on this session, else the request.
    void send_next();
    void finish(int code);
    void drop(Conn* c);
    void hello_failed();
    void expect();
    static void on_timeout(uv_timer_t* t);

    uv_loop_t* loop_;
    ClockClient* clock_;
    sockaddr_storage addr_;
    std::uint64_t timeout_ms_;
    Mode mode_ = Mode::unknown;
    int version_ = 2;  // the HELLO version asked: 2, then 1 when a tracker refuses 2
    bool hello_seen_ = false;  // a session was opened: this tracker speaks version_
    std::vector<std::string> fields_;
    V2 v2_;
    Conn* conn_ = nullptr;
    bool handshaking_ = false;
    bool busy_ = false;
    std::string request_;
    Shape shape_ = Shape::code_only;
    int n_ = 0;
    Done done_;
    ReplyDecoder reply_;
    uv_timer_t timer_{};
    std::string why_;
    bool closed_ = false;
    KeyFiles* keys_ = nullptr;
    std::string own_user_, own_key_;  // the call's user (empty: no OWN) and its key (empty: none)
    struct Owned {
        std::string user, key;
        bool ok;
    };
    std::vector<Owned> owned_;  // this session's OWN answers
    bool owning_ = false;  // the OWN of this call is in flight
    bool no_own_ = false;  // the tracker closed on OWN: it knows no owners
    bool not_owner_ = false;
    std::string key_problem_;
};

}  // namespace peerdex
