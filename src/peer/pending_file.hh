// A file that gets its name only when complete. It is an O_TMPFILE in the target's
// directory: whatever cuts the transfer short, even a crash or SIGKILL, leaves nothing.
// Where the file system has no O_TMPFILE, a hidden temporary name (PREFIX + 16 hex
// digits) stands in and is removed on failure. Every call may block: thread pool only.
#pragma once

#include <string>
#include <string_view>

namespace peerdex {

class PendingFile {
public:
    PendingFile() = default;
    PendingFile(const PendingFile&) = delete;
    PendingFile& operator=(const PendingFile&) = delete;
    ~PendingFile() { discard(); }

    // A new, empty file in the directory open as dir_fd (kept open by the caller until
    // commit or discard). Returns 0 or an errno value.
    int open(int dir_fd, std::string_view temp_prefix);
    int fd() const { return fd_; }
    // Synced, then named `name` inside the directory in one step (a file of that name
    // is replaced: readers see the old file or the new one, never a mix), then the
    // directory synced. Returns 0 or an errno value; on failure discard() cleans up.
    int commit(const std::string& name);
    // Closes the file and removes its temporary name, if it has one.
    void discard();

private:
    int temp_name(std::string& out);  // links fd_ under a fresh hidden name

    int dir_ = -1;
    int fd_ = -1;
    std::string prefix_;
    std::string temp_;  // the hidden name on disk, if any
};

}  // namespace peerdex
