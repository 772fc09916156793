// The log file of peerdex-logd and the journal that makes "exactly once" survive a
// crash. Blocking file I/O: peerdex-logd runs it on the libuv thread pool.
//
// Each batch: (1) drop entries already stored, by (instance, seq); (2) append an intent
// record "J <log size before> <log size after> <instance>:<seq>..." to the journal;
// (3) append the lines to the log. At start the journal is replayed: if the log is
// shorter than the last record's "after", that batch was cut short: the log is
// truncated back to its "before" and the batch counts as never stored, so the
// sender's retry writes it once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics.hh"

namespace peerdex {

enum class FsyncPolicy { always, batch, never };

struct LogEntry {
    std::string user;
    std::string operation;
    std::string path;
    std::string timestamp;
    std::uint64_t instance = 0;
    std::uint64_t seq = 0;
};

// One record of the journal: 'J' (a batch: the log's size before and after it, and the
// last seq of each instance in it) or 'S' (a snapshot of every instance's last seq).
struct JournalRecord {
    char kind = 'J';
    std::uint64_t before = 0, after = 0;
    std::map<std::uint64_t, std::uint64_t> seqs;
};
// "J <before> <after> <instance hex>:<seq>...\n"
void append_journal_record(std::string& out, const JournalRecord& r);
// One line of the journal without its newline; false when it is not a whole record (a
// crash tore it, or the file is not a journal).
bool parse_journal_record(std::string_view line, JournalRecord& r);

// "alice PUBLISH /home/alice/notes.txt 22/11/2026 22:38:20" (peerdex-protocol(7), 
// OPERATION LOG).
std::string format_line(const LogEntry& e);

// The entries of one call, formatted once into one buffer of lines.
class LogBatch {
public:
    void add(std::string_view user, std::string_view operation, std::string_view path, std::string_view timestamp,
             std::uint64_t instance, std::uint64_t seq);
    void add(const LogEntry& e) { add(e.user, e.operation, e.path, e.timestamp, e.instance, e.seq); }
    std::size_t size() const { return items_.size(); }
    // Room for n entries of typical length, so a batch grows its buffers once.
    void reserve(std::size_t n)
    {
        items_.reserve(n);
        text_.reserve(n * 48);
    }

private:
    friend class LogStore;
    struct Item {
        std::uint64_t instance, seq;
        std::size_t end;  // of its line in text_
    };
    std::string text_;
    std::vector<Item> items_;
};

class LogStore {
public:
    // log_path empty: lines go to stdout. state_path empty: duplicates are dropped in
    // memory only (there is no crash-safe dedupe without a file to truncate).
    LogStore(std::string log_path, std::string state_path, FsyncPolicy fsync);
    LogStore(const LogStore&) = delete;
    LogStore& operator=(const LogStore&) = delete;
    ~LogStore();

    // Opens the files and replays the journal. Returns 0 or -errno; message() says why.
    int open();
    // Stores the entries not stored before. Returns 0 or -errno (nothing counted as stored).
    int append(const LogBatch& batch);
    int append(const std::vector<LogEntry>& entries);
    // Log rotation: reopens the log path (a new file if it was moved away).
    int reopen();

    const std::string& message() const { return message_; }
    std::uint64_t written() const { return written_; }
    std::uint64_t duplicates() const { return duplicates_; }
    // Every fdatasync of the log and the journal, timed (on the thread that writes).
    const Histogram& syncs() const { return syncs_; }
    std::uint64_t last_seq(std::uint64_t instance) const;

private:
    int fail(int err, const std::string& what);
    int open_log();
    int replay_journal();
    int write_snapshot();
    int write_all(int fd, const std::string& data);
    int sync(int fd, const char* what);
    void rollback();

    std::string log_path_;
    std::string state_path_;
    FsyncPolicy fsync_;
    int log_fd_ = -1;
    int journal_fd_ = -1;
    std::uint64_t log_size_ = 0;
    std::uint64_t journal_size_ = 0;
    std::unordered_map<std::uint64_t, std::uint64_t> last_seq_;
    std::uint64_t written_ = 0;
    std::uint64_t duplicates_ = 0;
    Histogram syncs_;
    std::string message_;
    std::string lines_;    // reused buffers
    std::vector<std::size_t> line_ends_;
    std::string record_;
};

}  // namespace peerdex
