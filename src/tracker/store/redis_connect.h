#pragma once
/* The blocking connection the Redis store opens at start (to load its scripts), with a
 * timeout in milliseconds. Kept apart because hiredis takes the timeout as a struct timeval
 * by value: this file is built with the time ABI hiredis was built with (meson.build). */

#include <hiredis/hiredis.h>

#ifdef __cplusplus
extern "C" {
#endif

/* unix_path NULL: TCP to host:port. Returns what hiredis returns (NULL, or a context whose
 * err says why it failed); reads and writes on it time out after timeout_ms too. */
redisContext *peerdex_redis_connect(const char *host, int port, const char *unix_path, long timeout_ms);

#ifdef __cplusplus
}
#endif
