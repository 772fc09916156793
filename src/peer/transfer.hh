// One-shot requests to a peer listener or `peerdex serve` (peerdex-protocol(7), 
// FILE SERVER), on a libuv loop: PUT_FILE of a local file, and LIST_FILES. (GET_FILE is
// Download.)
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <functional>
#include <string>
#include <vector>

#include "files.hh"

namespace peerdex {

// code: the server's reply code (0 stored / listed, 1, 2), or -1 when the exchange
// failed (connection, timeout, malformed reply); `why` says what happened otherwise.
using UploadDone = std::function<void(int code, const std::string& why)>;
using ListDone = std::function<void(int code, std::vector<FileEntry> files, const std::string& why)>;

// Sends `local` as `name`. The reply is read while the body is sent, so a refusal
// stops the upload at once. `stall_ms`: no byte moved for this long fails it.
void start_upload(uv_loop_t* loop, const sockaddr_storage& server, const std::string& local, const std::string& name,
                  std::uint64_t stall_ms, bool progress, UploadDone done);

void start_list(uv_loop_t* loop, const sockaddr_storage& server, std::uint64_t timeout_ms, ListDone done);

}  // namespace peerdex
