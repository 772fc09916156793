// `peerdex serve | upload | download | ls`: the standalone file server and its
// one-shot clients; `peerdex hash`: content ids (peerdex(1), peerdex-protocol(7), FILE SERVER). Each returns the exit
// status.
#pragma once

namespace peerdex {

inline constexpr unsigned kServeDefaultPort = 4002;

int serve_main(int argc, char** argv);
int upload_main(int argc, char** argv);
int download_main(int argc, char** argv);
int ls_main(int argc, char** argv);
#ifdef PEERDEX_CONTENT_IDS
int hash_main(int argc, char** argv);  // hash_command.cc
#endif

}  // namespace peerdex
