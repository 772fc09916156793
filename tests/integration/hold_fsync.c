/* Test helper, loaded with LD_PRELOAD into a daemon: while the file named by
 * PEERDEX_HOLD_FSYNC exists, a flush (fdatasync or fsync) of a file whose path ends with
 * PEERDEX_HOLD_FSYNC_SUFFIX (default "-wal": the tracker's write-ahead log) waits, after
 * creating that name plus ".held" so the test knows it is waiting. The test removes the
 * file to let it go on. This shows what a reply waits for: a slow disk. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int is_held_file(int fd)
{
    const char* suffix = getenv("PEERDEX_HOLD_FSYNC_SUFFIX");
    if (!suffix || !*suffix)
        suffix = "-wal";
    const size_t len = strlen(suffix);
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0 || (size_t)n < len)
        return 0;
    path[n] = '\0';
    return strcmp(path + n - len, suffix) == 0;
}

static void hold(int fd)
{
    const char* gate = getenv("PEERDEX_HOLD_FSYNC");
    if (!gate || access(gate, F_OK) != 0 || !is_held_file(fd))
        return;
    char held[PATH_MAX];
    snprintf(held, sizeof held, "%s.held", gate);
    const int h = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (h >= 0)
        close(h);
    const struct timespec tick = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 60 * 200 && access(gate, F_OK) == 0; ++i)  /* at most a minute */
        nanosleep(&tick, NULL);
}

typedef int (*flush_fn)(int);

static flush_fn next(const char* name)
{
    flush_fn f;
    void* p = dlsym(RTLD_NEXT, name);
    memcpy(&f, &p, sizeof f);  /* POSIX: a dlsym result may be a function */
    return f;
}

int fdatasync(int fd)
{
    static flush_fn real;
    if (!real)
        real = next("fdatasync");
    hold(fd);
    return real(fd);
}

int fsync(int fd)
{
    static flush_fn real;
    if (!real)
        real = next("fsync");
    hold(fd);
    return real(fd);
}
