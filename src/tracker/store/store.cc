#include "store.hh"

#include "delayed_store.hh"
#include "memory_store.hh"
#ifdef PEERDEX_HAVE_SQLITE
#include "sqlite_store.hh"
#endif
#ifdef PEERDEX_HAVE_REDIS
#include "redis_store.hh"
#endif

namespace peerdex {

bool is_redis_target(std::string_view name)
{
    return name.substr(0, 8) == "redis://" || name.substr(0, 5) == "unix:";
}

std::unique_ptr<Store> make_store(uv_loop_t* loop, const StoreConfig& config, std::string& error)
{
    const std::string_view name = config.name;
    if (!config.state.empty()) {
        if (!name.empty()) {
            error = "--state and --store name two different stores: give one";
            return nullptr;
        }
#ifdef PEERDEX_HAVE_SQLITE
        return SqliteStore::open(loop, {config.state, config.sync_full, config.auth, config.search_budget}, error);
#else
        error = "--state: this peerdex-tracker was built without SQLite (meson setup -Dstate=enabled)";
        return nullptr;
#endif
    }
    if (name.empty() || name == "memory")
        return std::make_unique<MemoryStore>(config.auth, config.search_budget);
    if (is_redis_target(name)) {
#ifdef PEERDEX_HAVE_REDIS
        RedisOptions o;
        o.target = config.name;
        o.auth = config.auth;
        o.search_budget = config.search_budget;
        if (config.lease_ms)
            o.lease_ms = config.lease_ms;
        return RedisStore::open(loop, o, error);
#else
        error = "--store " + config.name + ": this peerdex-tracker was built without the shared store (meson setup "
                "-Dshared_store=enabled)";
        return nullptr;
#endif
    }
    if (name == "delayed")
        return std::make_unique<DelayedStore>(loop, config.auth, config.search_budget);
    error = "--store: unknown store \"" + std::string(name) + "\" (the stores are: memory, delayed, redis://HOST[:PORT][/DB], unix:/path)";
    return nullptr;
}

}  // namespace peerdex
