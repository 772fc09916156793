// The shared store's Lua script (redis_script.cc): every operation, one EVALSHA each.
#pragma once

namespace peerdex {

extern const char* const kRedisScript;

}  // namespace peerdex
