#include "decode.hh"

#include <rpc/rpc.h>

#include <algorithm>

#include "oplog.h"

namespace peerdex {

bool decode_oplog_args(std::string_view record, std::size_t offset, std::uint32_t proc, LogBatch& batch)
{
    if (offset > record.size() || (proc != OPLOG_ENTRY && proc != OPLOG_BATCH))
        return false;
    const std::size_t body = record.size() - offset;
    XDR xdrs;
    xdrmem_create(&xdrs, const_cast<char*>(record.data() + offset), static_cast<u_int>(body), XDR_DECODE);
    // xdr_string decodes into the buffer it is given (NUL-terminated) and allocates only
    // when the pointer is null.
    char user[OPLOG_MAX_NAME + 1], operation[OPLOG_MAX_OP + 1], path[OPLOG_MAX_NAME + 1], timestamp[OPLOG_MAX_TS + 1];
    oplog_entry e{};
    e.user = user;
    e.operation = operation;
    e.path = path;
    e.timestamp = timestamp;
    u_int count = 1;
    bool ok = proc == OPLOG_ENTRY || (xdr_u_int(&xdrs, &count) && count <= OPLOG_MAX_BATCH);
    if (ok) {
        // An entry takes at least four string lengths and two hypers: a count the record
        // cannot hold reserves no more than the record can.
        constexpr std::size_t kMinEntryBytes = 4 * 4 + 2 * 8;
        batch.reserve(std::min<std::size_t>(count, body / kMinEntryBytes));
    }
    for (u_int i = 0; ok && i < count; ++i) {
        ok = xdr_oplog_entry(&xdrs, &e);
        if (ok)
            batch.add(e.user, e.operation, e.path, e.timestamp, e.instance, e.seq);
    }
    xdr_destroy(&xdrs);
    return ok;
}

}  // namespace peerdex
