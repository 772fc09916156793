// ONC-RPC as the log server and the tracker read it (peerdex-protocol(7), OPERATION LOG):
// record marking read whole or in pieces gives the same records; each record goes through the
// call decoder and, for the log's procedures, the rpcgen XDR routines into a batch of lines,
// and through the reply decoder with the XDR status the tracker reads.
#include <rpc/rpc.h>

#include <string>
#include <vector>

#include "decode.hh"
#include "oncrpc.hh"
#include "oplog.h"
#include "pieces.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

// A small record cap: the 4 MiB default would only make the fuzzer slow.
constexpr std::size_t kCap = 64 * 1024;

std::vector<std::string> records(std::string_view bytes, fuzz::Pieces* pieces, bool& too_large)
{
    std::vector<std::string> out;
    oncrpc::RecordReader reader(kCap);
    too_large = false;
    fuzz::for_each_piece(bytes, pieces, [&](const char* p, const char* end) {
        while (p < end) {
            const auto st = reader.next(p, end);
            if (st == oncrpc::RecordReader::Status::too_large) {
                too_large = true;
                return false;
            }
            if (st != oncrpc::RecordReader::Status::record)
                break;
            check(reader.record().size() <= kCap, "a record over the cap was assembled");
            out.emplace_back(reader.record());
        }
        return true;
    });
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    fuzz::Pieces pieces(in.seed);
    bool whole_large = false, split_large = false;
    const std::vector<std::string> whole = records(in.bytes, nullptr, whole_large);
    check(whole == records(in.bytes, &pieces, split_large) && whole_large == split_large,
          "records read in pieces differ from records read whole");
    // A record alone, as the decoders see it when the marking is not what is being fuzzed.
    std::vector<std::string> all = whole;
    all.emplace_back(in.bytes);
    for (const std::string& r : all) {
        if (const auto call = oncrpc::decode_call(r)) {
            check(call->args_offset <= r.size(), "arguments start past the record");
            LogBatch batch;
            decode_oplog_args(r, call->args_offset, call->proc, batch);
        }
        if (const auto reply = oncrpc::decode_reply(r)) {
            check(reply->results_offset <= r.size(), "results start past the record");
            oplog_status status = OPLOG_ERROR;
            oncrpc::decode_body(r, reply->results_offset, reinterpret_cast<xdrproc_t>(xdr_oplog_status), &status);
        }
    }
    return 0;
}
