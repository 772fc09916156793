// Writing a string to a libuv stream: the string is kept alive until the write ends.
#pragma once

#include <uv.h>

#include <string>

namespace peerdex {

// Called when the write ended, with the stream and the status (0 or a libuv error).
using WriteDone = void (*)(uv_stream_t* stream, int status);

// Queues `data` on the stream. Returns 0, or the libuv error when it could not be
// queued (then `done` is not called). `done` may be null: errors then surface as
// read errors on the same stream.
int write_string(uv_stream_t* stream, std::string data, WriteDone done = nullptr);

}  // namespace peerdex
