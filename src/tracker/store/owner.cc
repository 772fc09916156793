#include "owner.hh"

#ifdef PEERDEX_HAVE_SODIUM
#include <sodium.h>
#endif

namespace peerdex {

bool keys_supported()
{
#ifdef PEERDEX_HAVE_SODIUM
    static const bool ready = sodium_init() >= 0;
    return ready;
#else
    return false;
#endif
}

bool hash_key(std::string_view key, KeyHash& out)
{
#ifdef PEERDEX_HAVE_SODIUM
    if (!keys_supported())
        return false;
    // A key is 32 random bytes: a fast hash suffices (nothing to guess), and the stored
    // hash gives nothing that proves ownership.
    return crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                              nullptr, 0) == 0;
#else
    (void)key;
    (void)out;
    return false;
#endif
}

}  // namespace peerdex
