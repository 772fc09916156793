#include "write.hh"

#include <memory>

namespace peerdex {

namespace {
struct WriteReq {
    uv_write_t req{};
    std::string data;
    WriteDone done;
};
}  // namespace

int write_string(uv_stream_t* stream, std::string data, WriteDone done)
{
    auto w = std::make_unique<WriteReq>();
    w->data = std::move(data);
    w->done = done;
    w->req.data = w.get();
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    const int rc = uv_write(&w->req, stream, &b, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<WriteReq> finished(static_cast<WriteReq*>(req->data));
        if (finished->done)
            finished->done(req->handle, status);
    });
    if (rc == 0)
        w.release();  // owned by the request until its callback
    return rc;
}

}  // namespace peerdex
