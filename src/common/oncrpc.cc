#include "oncrpc.hh"

#include <cstring>

namespace peerdex::oncrpc {

namespace {

constexpr std::uint32_t kLastFragment = 0x80000000u;
constexpr std::uint32_t kRpcVersion = 2;
constexpr std::uint32_t kCall = 0;
constexpr std::uint32_t kReply = 1;

void put_u32(std::string& out, std::uint32_t v)
{
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
    out.append(b, 4);
}

std::uint32_t get_u32_at(const char* p)
{
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return std::uint32_t{u[0]} << 24 | std::uint32_t{u[1]} << 16 | std::uint32_t{u[2]} << 8 | u[3];
}

// Bounded cursor over a record.
struct Cursor {
    std::string_view rec;
    std::size_t pos = 0;
    bool u32(std::uint32_t& v)
    {
        if (rec.size() - pos < 4)
            return false;
        v = get_u32_at(rec.data() + pos);
        pos += 4;
        return true;
    }
    bool skip_auth()
    {
        std::uint32_t flavor, len;
        if (!u32(flavor) || !u32(len) || len > kMaxAuthBytes)
            return false;
        const std::size_t padded = (len + 3u) & ~std::size_t{3};
        if (rec.size() - pos < padded)
            return false;
        pos += padded;
        return true;
    }
};

// Reserves the record mark, returns its position; finish_record() fills it in.
std::size_t begin_record(std::string& out)
{
    const std::size_t at = out.size();
    put_u32(out, 0);
    return at;
}

void finish_record(std::string& out, std::size_t at)
{
    const auto len = static_cast<std::uint32_t>(out.size() - at - 4);
    std::string mark;
    put_u32(mark, kLastFragment | len);
    std::memcpy(&out[at], mark.data(), 4);
}

bool append_xdr(std::string& out, xdrproc_t proc, const void* obj, std::size_t known_size)
{
    void* p = const_cast<void*>(obj);  // XDR_ENCODE does not modify the object
    const unsigned long size = known_size ? known_size : xdr_sizeof(proc, p);
    const std::size_t at = out.size();
    out.resize(at + size);
    XDR xdrs;
    xdrmem_create(&xdrs, &out[at], static_cast<u_int>(size), XDR_ENCODE);
    const bool ok = proc(&xdrs, p);
    xdr_destroy(&xdrs);
    if (!ok)
        out.resize(at);
    return ok;
}

}  // namespace

RecordReader::Status RecordReader::next(const char*& p, const char* end)
{
    if (complete_) {
        record_.clear();
        complete_ = false;
    }
    while (p < end) {
        if (!in_fragment_) {
            while (header_len_ < 4 && p < end)
                header_[header_len_++] = *p++;
            if (header_len_ < 4)
                return Status::need_more;
            header_len_ = 0;
            const std::uint32_t mark = get_u32_at(header_);
            last_fragment_ = (mark & kLastFragment) != 0;
            fragment_left_ = mark & ~kLastFragment;
            if (record_.size() + fragment_left_ > cap_)
                return Status::too_large;
            in_fragment_ = true;
        }
        const std::size_t take = std::min<std::size_t>(fragment_left_, static_cast<std::size_t>(end - p));
        record_.append(p, take);
        p += take;
        fragment_left_ -= take;
        if (fragment_left_ == 0) {
            in_fragment_ = false;
            if (last_fragment_) {
                complete_ = true;
                return Status::record;
            }
        }
    }
    return Status::need_more;
}

std::optional<CallHeader> decode_call(std::string_view record)
{
    Cursor c{record};
    CallHeader h;
    std::uint32_t mtype;
    if (!c.u32(h.xid) || !c.u32(mtype) || mtype != kCall || !c.u32(h.rpcvers))
        return std::nullopt;
    if (h.rpcvers == kRpcVersion &&
        (!c.u32(h.prog) || !c.u32(h.vers) || !c.u32(h.proc) || !c.skip_auth() || !c.skip_auth()))
        return std::nullopt;
    h.args_offset = c.pos;
    return h;
}

bool append_call(std::string& out, std::uint32_t xid, std::uint32_t prog, std::uint32_t vers, std::uint32_t proc,
                 xdrproc_t args, const void* argp, std::size_t args_size)
{
    const std::size_t start = out.size();
    const std::size_t at = begin_record(out);
    for (std::uint32_t v : {xid, kCall, kRpcVersion, prog, vers, proc, 0u, 0u, 0u, 0u})  // AUTH_NONE twice
        put_u32(out, v);
    if (args && !append_xdr(out, args, argp, args_size)) {
        out.resize(start);
        return false;
    }
    finish_record(out, at);
    return true;
}

bool append_reply(std::string& out, std::uint32_t xid, accept_stat stat, xdrproc_t results, const void* resp,
                  std::uint32_t low, std::uint32_t high)
{
    const std::size_t start = out.size();
    const std::size_t at = begin_record(out);
    for (std::uint32_t v : {xid, kReply, 0u /* MSG_ACCEPTED */, 0u, 0u /* AUTH_NONE verifier */,
                            static_cast<std::uint32_t>(stat)})
        put_u32(out, v);
    if (stat == PROG_MISMATCH) {
        put_u32(out, low);
        put_u32(out, high);
    } else if (stat == SUCCESS && results && !append_xdr(out, results, resp, 0)) {
        out.resize(start);
        return false;
    }
    finish_record(out, at);
    return true;
}

void append_rpc_mismatch(std::string& out, std::uint32_t xid)
{
    const std::size_t at = begin_record(out);
    for (std::uint32_t v : {xid, kReply, 1u /* MSG_DENIED */, 0u /* RPC_MISMATCH */, kRpcVersion, kRpcVersion})
        put_u32(out, v);
    finish_record(out, at);
}

std::optional<ReplyHeader> decode_reply(std::string_view record)
{
    Cursor c{record};
    ReplyHeader h;
    std::uint32_t mtype, rstat;
    if (!c.u32(h.xid) || !c.u32(mtype) || mtype != kReply || !c.u32(rstat))
        return std::nullopt;
    h.accepted = rstat == 0;
    if (h.accepted && (!c.skip_auth() || !c.u32(h.stat)))
        return std::nullopt;
    h.results_offset = c.pos;
    return h;
}

bool decode_body(std::string_view record, std::size_t offset, xdrproc_t proc, void* obj)
{
    if (offset > record.size())
        return false;
    XDR xdrs;
    xdrmem_create(&xdrs, const_cast<char*>(record.data() + offset), static_cast<u_int>(record.size() - offset),
                  XDR_DECODE);
    const bool ok = proc(&xdrs, obj);
    xdr_destroy(&xdrs);
    return ok;
}

}  // namespace peerdex::oncrpc
