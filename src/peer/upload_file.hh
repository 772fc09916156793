// PUT_FILE storage (peerdex-protocol(7), FILE SERVER): where an upload's bytes go between
// the socket and their name. Two buffers alternate, one filling from the socket while the
// other is written to a PendingFile; writeback starts every few MiB so that the final sync
// is short; the file is named only when every byte is on disk. The loop side says where
// the next read goes and whether a write can start; the pool side (open, write, commit)
// may block and runs on the thread pool, one call at a time. The caller owns the timing.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "pending_file.hh"

namespace peerdex {

class UploadFile {
public:
    static constexpr std::size_t kBufferBytes = 256 * 1024;

    // Loop side.
    // An upload of `size` bytes, `n` of which came with the request at `body`.
    void start(std::uint64_t size, const char* body, std::size_t n);
    // Where the next read may put its bytes, and how many it may put there.
    uv_buf_t room();
    // `n` bytes were read into room(); bytes past the announced size are not the file's.
    void received(std::size_t n);
    // More is expected and there is room for it.
    bool wants_input() const { return filled_ < kBufferBytes && received_ < size_; }
    // A filled buffer waits and no write is under way: begin_write() may hand it over.
    bool write_ready() const { return !writing_ && filled_ > 0; }
    void begin_write();
    void write_done() { writing_ = false; written_ += in_flight_; }
    // Every byte received and on disk: commit() may run.
    bool complete() const { return received_ == size_ && !writing_ && filled_ == 0; }
    std::uint64_t size() const { return size_; }
    std::uint64_t received() const { return received_; }

    // Pool side: each returns 0 or an errno value.
    // Refuses (ENOSPC) an upload larger than the free space, then creates the nameless file.
    int open(int dir_fd);
    // Writes the buffer handed over by begin_write().
    int write();
    // Synced and named `name`, replacing any file of that name in one step.
    int commit(const std::string& name) { return file_.commit(name); }

    // Either side, with no pool call under way: the file (nameless) and the buffers go.
    void discard();

    // At start: the hidden temporary files an earlier run left where the file system has no
    // O_TMPFILE, idle for ten minutes, are removed. Returns how many.
    static int remove_stale(int dir_fd);

private:
    PendingFile file_;
    std::unique_ptr<char[]> filling_, draining_;
    std::uint64_t size_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t written_ = 0;
    std::uint64_t synced_ = 0;  // bytes handed to writeback
    std::size_t filled_ = 0;
    std::size_t in_flight_ = 0;
    bool writing_ = false;
};

}  // namespace peerdex
