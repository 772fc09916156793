#include "console.hh"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>

namespace peerdex {

namespace {

char stdout_buffer[1 << 16];

// One write per message, so that lines of processes sharing a terminal do not interleave.
void write_stderr(const char* fmt, va_list ap)
{
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n < 0)
        return;
    std::size_t len = std::min(static_cast<std::size_t>(n), sizeof buf - 2);
    buf[len++] = '\n';
    ssize_t ignored = ::write(STDERR_FILENO, buf, len);
    (void)ignored;
}

}  // namespace

void Console::init(Verbosity v)
{
    verbosity_ = v;
    std::setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
}

void Console::banner(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stdout, fmt, ap);
    va_end(ap);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void Console::line(const char* fmt, ...)
{
    if (!normal())
        return;
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stdout, fmt, ap);
    va_end(ap);
    std::fputc('\n', stdout);
    dirty_ = true;
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

void Console::flush()
{
    if (dirty_) {
        std::fflush(stdout);
        dirty_ = false;
    }
}

}  // namespace peerdex
