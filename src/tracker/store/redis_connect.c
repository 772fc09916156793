/* Built with the system's own time_t, the one libhiredis was built with: where meson.build
 * added the 64-bit one for peerdex's code, it is taken back here before any header. */
#ifdef PEERDEX_TIME64_ADDED
#undef _TIME_BITS
#endif

#include "redis_connect.h"

redisContext *peerdex_redis_connect(const char *host, int port, const char *unix_path, long timeout_ms)
{
    const struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = unix_path ? redisConnectUnixWithTimeout(unix_path, tv) : redisConnectWithTimeout(host, port, tv);
    if (c && !c->err)
        redisSetTimeout(c, tv);
    return c;
}
