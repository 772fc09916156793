#include "console.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <string>

namespace peerdex {

namespace {

// stdout lines waiting for the kernel; beyond this they are dropped, not queued.
constexpr std::size_t kMaxPendingBytes = 1 << 20;
constexpr std::size_t kMaxLineBytes = 1024;

std::string pending;

// Formats one message and its newline into buf (cut at kMaxLineBytes); returns its length.
std::size_t format_line(char (&buf)[kMaxLineBytes], const char* fmt, va_list ap)
{
    const int n = std::vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n < 0)
        return 0;
    std::size_t len = std::min(static_cast<std::size_t>(n), sizeof buf - 2);
    buf[len++] = '\n';
    return len;
}

// One write per message, so that lines of processes sharing a terminal do not interleave.
void write_stderr(const char* fmt, va_list ap)
{
    char buf[kMaxLineBytes];
    if (const std::size_t len = format_line(buf, fmt, ap)) {
        ssize_t ignored = ::write(STDERR_FILENO, buf, len);
        (void)ignored;
    }
}

void append_line(const char* fmt, va_list ap, std::uint64_t& dropped)
{
    char buf[kMaxLineBytes];
    const std::size_t len = format_line(buf, fmt, ap);
    if (len == 0)
        return;
    if (pending.size() + len > kMaxPendingBytes) {
        ++dropped;
        return;
    }
    pending.append(buf, len);
}

}  // namespace

void Console::init(Verbosity v, bool nonblocking)
{
    verbosity_ = v;
    pending.reserve(64 * 1024);
    struct stat st {};
    if (nonblocking && fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        const int flags = fcntl(STDOUT_FILENO, F_GETFL);
        if (flags >= 0)
            fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK);
    }
}

void Console::banner(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append_line(fmt, ap, dropped_);
    va_end(ap);
    flush();
}

void Console::line(const char* fmt, ...)
{
    if (!normal())
        return;
    va_list ap;
    va_start(ap, fmt);
    append_line(fmt, ap, dropped_);
    va_end(ap);
}

void Console::flush()
{
    std::size_t done = 0;
    while (done < pending.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, pending.data() + done, pending.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;  // the reader is behind: the rest waits for a later turn
        } else {
            done = pending.size();  // stdout is gone: nothing to keep
        }
    }
    pending.erase(0, done);
}

void Console::info(const char* fmt, ...)
{
    if (!normal())
        return;
    va_list ap;
    va_start(ap, fmt);
    write_stderr(fmt, ap);
    va_end(ap);
}

void Console::debug(const char* fmt, ...)
{
    if (!verbose())
        return;
    va_list ap;
    va_start(ap, fmt);
    write_stderr(fmt, ap);
    va_end(ap);
}

void Console::error(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_stderr(fmt, ap);
    va_end(ap);
}

}  // namespace peerdex
