// ONC-RPC framing over TCP (RFC 5531): record marking, call and reply headers.
// Pure: bytes in, bytes out. The procedure arguments and results are encoded and
// decoded by the rpcgen-generated XDR routines passed in as xdrproc_t.
#pragma once

#include <rpc/rpc.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace peerdex::oncrpc {

// Largest record either side accepts; a peer announcing more is cut off.
inline constexpr std::size_t kMaxRecordBytes = 4 * 1024 * 1024;
// RFC 5531 caps an authenticator body at 400 bytes.
inline constexpr std::uint32_t kMaxAuthBytes = 400;

// Reassembles record-marked fragments into records of at most `cap` bytes.
class RecordReader {
public:
    enum class Status { need_more, record, too_large };
    explicit RecordReader(std::size_t cap = kMaxRecordBytes) : cap_(cap) {}
    // Consumes bytes up to the end of one record; advances p.
    Status next(const char*& p, const char* end);
    std::string_view record() const { return record_; }

private:
    std::string record_;
    char header_[4] = {};
    std::size_t header_len_ = 0;
    std::size_t fragment_left_ = 0;
    bool last_fragment_ = false;
    bool in_fragment_ = false;
    bool complete_ = false;
    std::size_t cap_;
};

struct CallHeader {
    std::uint32_t xid = 0;
    std::uint32_t rpcvers = 0;
    std::uint32_t prog = 0;
    std::uint32_t vers = 0;
    std::uint32_t proc = 0;
    std::size_t args_offset = 0;  // where the arguments start in the record
};

// Decodes a CALL header; nullopt when the record is not a well-formed call.
std::optional<CallHeader> decode_call(std::string_view record);

// Appends one record-marked CALL with AUTH_NONE and the encoded arguments.
// `args_size`, when the caller knows it, spares a sizing pass over the arguments.
// Returns false when the arguments do not encode.
bool append_call(std::string& out, std::uint32_t xid, std::uint32_t prog, std::uint32_t vers, std::uint32_t proc,
                 xdrproc_t args, const void* argp, std::size_t args_size = 0);

// The XDR size of a string of n bytes: length word, bytes, padding to 4.
constexpr std::size_t xdr_string_size(std::size_t n) { return 4 + ((n + 3) & ~std::size_t{3}); }

// Appends one record-marked accepted reply. For SUCCESS, `results` encodes `resp`;
// for PROG_MISMATCH, low and high are the supported versions.
bool append_reply(std::string& out, std::uint32_t xid, accept_stat stat, xdrproc_t results = nullptr,
                  const void* resp = nullptr, std::uint32_t low = 0, std::uint32_t high = 0);
// Appends one record-marked MSG_DENIED / RPC_MISMATCH reply (we speak RPC version 2 only).
void append_rpc_mismatch(std::string& out, std::uint32_t xid);

struct ReplyHeader {
    std::uint32_t xid = 0;
    bool accepted = false;         // MSG_ACCEPTED
    std::uint32_t stat = 0;        // accept_stat when accepted
    std::size_t results_offset = 0;
};
std::optional<ReplyHeader> decode_reply(std::string_view record);

// Runs an rpcgen XDR routine on [offset, end) of a record. The caller frees with xdr_free.
bool decode_body(std::string_view record, std::size_t offset, xdrproc_t proc, void* obj);

}  // namespace peerdex::oncrpc
