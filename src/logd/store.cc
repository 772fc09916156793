#include "store.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

namespace peerdex {

namespace {

// The journal is rewritten as one snapshot record when it grows past this.
constexpr std::uint64_t kJournalCompactBytes = 1 << 20;

void append_record(std::string& out, char kind, std::uint64_t before, std::uint64_t after,
                   const std::map<std::uint64_t, std::uint64_t>& seqs)
{
    char buf[64];
    out += kind;
    std::snprintf(buf, sizeof buf, " %" PRIu64 " %" PRIu64, before, after);
    out += buf;
    for (const auto& [instance, seq] : seqs) {
        std::snprintf(buf, sizeof buf, " %" PRIx64 ":%" PRIu64, instance, seq);
        out += buf;
    }
    out += '\n';
}

}  // namespace

void append_journal_record(std::string& out, const JournalRecord& r)
{
    append_record(out, r.kind, r.before, r.after, r.seqs);
}

bool parse_journal_record(std::string_view line, JournalRecord& r)
{
    std::istringstream in{std::string(line)};
    if (!(in >> r.kind >> r.before >> r.after) || (r.kind != 'J' && r.kind != 'S') || r.before > r.after)
        return false;
    std::string pair;
    while (in >> pair) {
        std::uint64_t instance, seq;
        char tail;
        if (std::sscanf(pair.c_str(), "%" SCNx64 ":%" SCNu64 "%c", &instance, &seq, &tail) != 2)
            return false;
        r.seqs[instance] = seq;
    }
    return true;
}

std::string format_line(const LogEntry& e)
{
    std::string line = e.user + ' ' + e.operation;
    if (!e.path.empty())
        line += ' ' + e.path;
    if (!e.timestamp.empty())
        line += ' ' + e.timestamp;
    return line;
}

LogStore::LogStore(std::string log_path, std::string state_path, FsyncPolicy fsync)
    : log_path_(std::move(log_path)), state_path_(std::move(state_path)), fsync_(fsync)
{
}

LogStore::~LogStore()
{
    if (log_fd_ > STDERR_FILENO)
        ::close(log_fd_);
    if (journal_fd_ >= 0)
        ::close(journal_fd_);
}

int LogStore::fail(int err, const std::string& what)
{
    message_ = what + ": " + std::strerror(err);
    return -err;
}

std::uint64_t LogStore::last_seq(std::uint64_t instance) const
{
    auto it = last_seq_.find(instance);
    return it == last_seq_.end() ? 0 : it->second;
}

int LogStore::open_log()
{
    if (log_path_.empty()) {
        log_fd_ = STDOUT_FILENO;
        log_size_ = 0;
        return 0;
    }
    const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail(errno, "cannot open log file " + log_path_);
    struct stat st {};
    fstat(fd, &st);
    if (log_fd_ > STDERR_FILENO)
        ::close(log_fd_);
    log_fd_ = fd;
    log_size_ = static_cast<std::uint64_t>(st.st_size);
    return 0;
}

int LogStore::open()
{
    if (int rc = open_log())
        return rc;
    if (state_path_.empty())
        return 0;
    if (int rc = replay_journal())
        return rc;
    return write_snapshot();
}

int LogStore::replay_journal()
{
    FILE* f = std::fopen(state_path_.c_str(), "r");
    if (!f)
        return errno == ENOENT ? 0 : fail(errno, "cannot read state file " + state_path_);
    std::vector<JournalRecord> records;
    char* line = nullptr;
    std::size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        JournalRecord r;
        if (line[n - 1] != '\n' || !parse_journal_record(std::string_view(line, static_cast<std::size_t>(n - 1)), r))
            break;  // a record torn by a crash ends the journal
        records.push_back(std::move(r));
    }
    std::free(line);
    std::fclose(f);
    if (records.empty())
        return 0;
    const JournalRecord& last = records.back();
    // Was the last batch written completely? If not, remove its beginning.
    const bool last_complete = log_path_.empty() || log_size_ >= last.after || log_size_ < last.before;
    if (!last_complete) {
        if (ftruncate(log_fd_, static_cast<off_t>(last.before)) != 0)
            return fail(errno, "cannot truncate the unfinished batch in " + log_path_);
        log_size_ = last.before;
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (i + 1 == records.size() && !last_complete)
            break;
        for (const auto& [instance, seq] : records[i].seqs)
            last_seq_[instance] = seq;
    }
    return 0;
}

int LogStore::write_snapshot()
{
    // The whole state in one record, written aside and renamed over the journal.
    const std::map<std::uint64_t, std::uint64_t> all(last_seq_.begin(), last_seq_.end());
    record_.clear();
    append_record(record_, 'S', log_size_, log_size_, all);
    const std::string tmp = state_path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail(errno, "cannot write state file " + tmp);
    if (int rc = write_all(fd, record_); rc != 0) {
        ::close(fd);
        return rc;
    }
    if (fsync_ != FsyncPolicy::never && fsync(fd) != 0) {
        ::close(fd);
        return fail(errno, "cannot sync " + tmp);
    }
    if (std::rename(tmp.c_str(), state_path_.c_str()) != 0) {
        ::close(fd);
        return fail(errno, "cannot replace state file " + state_path_);
    }
    if (journal_fd_ >= 0)
        ::close(journal_fd_);
    journal_fd_ = fd;
    journal_size_ = record_.size();
    if (::lseek(fd, 0, SEEK_END) < 0)
        return fail(errno, "cannot seek state file");
    return 0;
}

int LogStore::write_all(int fd, const std::string& data)
{
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(errno, fd == log_fd_ ? "cannot write log" : "cannot write state file");
        done += static_cast<std::size_t>(n);
    }
    return 0;
}

int LogStore::sync(int fd, const char* what)
{
    if (fsync_ == FsyncPolicy::never || fd == STDOUT_FILENO)
        return 0;
    timespec t0{}, t1{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int rc = fdatasync(fd);
    if (rc != 0 && errno != EINVAL)  // EINVAL: a pipe or terminal
        return fail(errno, std::string("cannot sync ") + what);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        syncs_.observe_ns(static_cast<std::uint64_t>(t1.tv_sec - t0.tv_sec) * 1000000000u +
                          static_cast<std::uint64_t>(t1.tv_nsec) - static_cast<std::uint64_t>(t0.tv_nsec));
    return 0;
}

void LogBatch::add(std::string_view user, std::string_view operation, std::string_view path,
                   std::string_view timestamp, std::uint64_t instance, std::uint64_t seq)
{
    text_.append(user).append(1, ' ').append(operation);
    if (!path.empty())
        text_.append(1, ' ').append(path);
    if (!timestamp.empty())
        text_.append(1, ' ').append(timestamp);
    text_.push_back('\n');
    items_.push_back({instance, seq, text_.size()});
}

int LogStore::append(const std::vector<LogEntry>& entries)
{
    LogBatch batch;
    for (const LogEntry& e : entries)
        batch.add(e);
    return append(batch);
}

int LogStore::append(const LogBatch& batch)
{
    // Keep the entries not stored before: usually all of them, and then the batch's
    // own text is written as it is; otherwise the kept lines are copied out.
    lines_.clear();
    line_ends_.clear();
    std::map<std::uint64_t, std::uint64_t> seqs;
    std::uint64_t dups = 0;
    std::size_t start = 0;
    for (const LogBatch::Item& item : batch.items_) {
        auto it = seqs.find(item.instance);
        const std::uint64_t last = it != seqs.end() ? it->second : last_seq(item.instance);
        if (item.seq > last) {
            seqs[item.instance] = item.seq;
            lines_.append(batch.text_, start, item.end - start);
            line_ends_.push_back(lines_.size());
        } else {
            ++dups;
        }
        start = item.end;
    }
    const std::string& text = lines_;
    if (!text.empty() && !line_ends_.empty()) {
        // With a log file the intent goes first (a cut batch is truncated at start);
        // on stdout nothing can be truncated, so the record follows the lines.
        if (journal_fd_ >= 0 && !log_path_.empty()) {
            record_.clear();
            append_record(record_, 'J', log_size_, log_size_ + text.size(), seqs);
            if (int rc = write_all(journal_fd_, record_); rc != 0)
                return rc;
            if (int rc = sync(journal_fd_, "state file"); rc != 0)
                return rc;
            journal_size_ += record_.size();
        }
        if (fsync_ == FsyncPolicy::always) {
            // One line, one sync: nothing acknowledged can be lost, at a price.
            std::size_t from = 0;
            for (std::size_t end : line_ends_) {
                if (int rc = write_all(log_fd_, text.substr(from, end - from)); rc != 0) {
                    rollback();
                    return rc;
                }
                if (int rc = sync(log_fd_, "log"); rc != 0)
                    return rc;
                from = end;
            }
        } else if (int rc = write_all(log_fd_, text); rc != 0) {
            rollback();
            return rc;
        } else if (int rc2 = sync(log_fd_, "log"); rc2 != 0) {
            return rc2;
        }
        if (journal_fd_ >= 0 && log_path_.empty()) {
            record_.clear();
            append_record(record_, 'J', 0, 0, seqs);
            if (int rc = write_all(journal_fd_, record_); rc != 0)
                return rc;
            journal_size_ += record_.size();
        }
        log_size_ += text.size();
        for (const auto& [instance, seq] : seqs)
            last_seq_[instance] = seq;
        written_ += line_ends_.size();
    }
    duplicates_ += dups;
    if (journal_fd_ >= 0 && journal_size_ > kJournalCompactBytes)
        return write_snapshot();
    return 0;
}

void LogStore::rollback()
{
    // Keep the file consistent with log_size_: a half-written batch is removed now.
    if (!log_path_.empty() && ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0)
        message_ += " (and the partial batch could not be removed)";
}

int LogStore::reopen()
{
    if (log_path_.empty())
        return 0;
    if (int rc = open_log(); rc != 0)
        return rc;
    // The journal's offsets must describe the file now open.
    return journal_fd_ >= 0 ? write_snapshot() : 0;
}

}  // namespace peerdex
