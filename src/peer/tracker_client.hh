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

    // Sends one request (its fields, NUL-terminated on the wire, in one write).
    void call(std::vector<std::string> fields, Shape shape, int n, Done done);
    bool sessions() const { return mode_ == Mode::hello; }
    const std::string& why() const { return why_; }
    // Closes the session and every handle; the loop can then end.
    void close();

private:
    enum class Mode { unknown, hello, canonical };
    struct Conn;

    void start(std::vector<std::string> fields);
    void open(bool hello);
    void on_connected(Conn* c, int status);
    void on_data(Conn* c, const char* p, const char* end);
    void on_eof(Conn* c);
    void send_request();
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
};

}  // namespace peerdex
