// The keys of the users this client registered (peerdex-protocol(7), OWNERSHIP): one file
// per tracker and user, readable by its owner only, under
// $XDG_CONFIG_HOME/peerdex/keys/TRACKER/ (~/.config when XDG_CONFIG_HOME is unset). A key is
// 32 random bytes written as 64 hexadecimal digits; the tracker keeps only its hash.
#pragma once

#include <string>

namespace peerdex {

class KeyFiles {
public:
    // `tracker` names the tracker's directory ("127.0.0.1:4000"); `base` overrides the
    // configuration directory (tests), else it comes from the environment.
    explicit KeyFiles(const std::string& tracker, std::string base = "");

    // The key of `user`: empty when it has none. A file that exists but cannot be read
    // or holds no key sets `error`.
    std::string get(const std::string& user, std::string& error) const;
    // A new random key for `user`, on disk (0600, written whole, then renamed into place)
    // before it is returned; empty and `error` set when it cannot be made.
    std::string create(const std::string& user, std::string& error);
    // Removes the key of `user` (after UNREGISTER); a missing file is no error.
    void forget(const std::string& user);
    // Where the key of `user` lives.
    std::string path(const std::string& user) const;

private:
    std::string dir_;
};

}  // namespace peerdex
