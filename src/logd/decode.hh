// The arguments of the operation log's calls (rpc/oplog.x), decoded for the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "store.hh"

namespace peerdex {

// Decodes the arguments of OPLOG_ENTRY or OPLOG_BATCH (proc) found at `offset` of an
// RPC call record into `batch`, with the rpcgen routines. Each entry is decoded into one
// set of buffers of the protocol's maximum sizes and appended to the batch as a line, so
// a call allocates nothing per entry. False: the arguments are not what the call carries
// (the batch may then hold a part of them and must be discarded).
bool decode_oplog_args(std::string_view record, std::size_t offset, std::uint32_t proc, LogBatch& batch);

}  // namespace peerdex
