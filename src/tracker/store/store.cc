#include "store.hh"

#include "delayed_store.hh"
#include "memory_store.hh"

namespace peerdex {

std::unique_ptr<Store> make_store(uv_loop_t* loop, std::string_view name, std::string& error)
{
    if (name.empty() || name == "memory")
        return std::make_unique<MemoryStore>();
    if (name == "delayed")
        return std::make_unique<DelayedStore>(loop);
    error = "unknown store \"" + std::string(name) + "\" (the stores are: memory, delayed)";
    return nullptr;
}

}  // namespace peerdex
