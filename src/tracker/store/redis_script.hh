// The shared store's Lua scripts (redis_script.cc): one per operation, one EVALSHA each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace peerdex {

struct RedisScript {
    std::string_view op;  // ARGV[1] of its calls: register, unregister, ..., walk, expire, search
    std::string text;
};

// Every script, built once.
const std::vector<RedisScript>& redis_scripts();

}  // namespace peerdex
