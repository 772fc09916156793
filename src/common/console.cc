#include "console.hh"

#include <cstdarg>

namespace peerdex {

namespace {
char stdout_buffer[1 << 16];
}

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
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

void Console::debug(const char* fmt, ...)
{
    if (!verbose())
        return;
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

void Console::error(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

void Console::flush()
{
    if (dirty_) {
        std::fflush(stdout);
        dirty_ = false;
    }
}

}  // namespace peerdex
