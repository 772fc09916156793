#include "sqlite_store.hh"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "console.hh"

namespace peerdex {

namespace {

// "PDX1": what marks a peerdex state file, beside its schema version.
constexpr std::int32_t kApplicationId = 0x50445831;
constexpr int kSchemaVersion = 3;
// The open batch stops taking requests (the sessions stop reading) at these.
constexpr std::size_t kMaxBatchChanges = 16384;
constexpr std::size_t kMaxBatchBytes = 8 << 20;
// Publications per user reserved at most when loading (see load()).
constexpr std::size_t kReservePerUser = 64;
// Requests kept while the registry is reloaded after a failed commit.
constexpr std::size_t kMaxHeld = 65536;

const char* const kSchema =
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  ip TEXT,"            // NULL while not connected
    "  port INTEGER,"
    "  connected INTEGER,"  // the order of connections; NULL while not connected
    "  owner TEXT,"         // the address that registered it (version 2)
    "  key BLOB"            // the hash of its key, if it was registered with one (version 2)
    ") WITHOUT ROWID;"
    "CREATE TABLE publications ("
    "  seq INTEGER PRIMARY KEY,"  // publication order
    "  user TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  size INTEGER,"             // bytes, from a peerdex/2 PUBLISH; NULL: unknown (version 3)
    "  content_id TEXT,"          // "sha256:" and 64 lowercase hex digits; NULL: unknown (version 3)
    "  UNIQUE (user, path)"
    ");";

struct Statement {
    sqlite3_stmt* s = nullptr;
    ~Statement() { sqlite3_finalize(s); }
};

}  // namespace

// The database, used by one thread at a time: at start and at close the loop's, in
// between only the thread-pool job that commits or reloads.
class StateDatabase {
public:
    ~StateDatabase()
    {
        for (Statement* s :
             {&begin_, &commit_, &ins_user_, &del_pubs_, &del_user_, &connect_, &disconnect_, &publish_, &remove_})
            sqlite3_finalize(std::exchange(s->s, nullptr));
        sqlite3_close(db_);
    }

    // Opens the file and checks what it is, writing nothing.
    static std::unique_ptr<StateDatabase> open(const SqliteOptions& o, std::string& error);
    bool fresh() const { return fresh_; }
    // After a successful load: WAL mode, the sync level, the schema of a new file, and the
    // statements of commit(). The first writes to the file.
    bool writable(const SqliteOptions& o, std::string& error);
    // Leaves the file as it was found when the database is closed without being used.
    void untouched() { sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr); }
    // Loads every user, connection (in connection order) and publication (in publication
    // order) into `into`; the next connection sequence number in `next_seq`.
    bool load(Registry& into, std::int64_t& next_seq, std::string& error);
    // One transaction; 0 or the SQLite error code, with message().
    int commit(const std::vector<SqliteStore::Change>& changes);
    const std::string& message() const { return message_; }

private:
    bool exec(const char* sql, std::string& error);
    bool prepare(Statement& st, const char* sql, std::string& error);
    int step(Statement& st);
    int run(const SqliteStore::Change& c);

    sqlite3* db_ = nullptr;
    bool fresh_ = false;
    int version_ = kSchemaVersion;
    std::string message_;
    Statement begin_, commit_, ins_user_, del_pubs_, del_user_, connect_, disconnect_, publish_, remove_;
};

bool StateDatabase::exec(const char* sql, std::string& error)
{
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK)
        return true;
    error = msg ? msg : sqlite3_errmsg(db_);
    sqlite3_free(msg);
    return false;
}

bool StateDatabase::prepare(Statement& st, const char* sql, std::string& error)
{
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st.s, nullptr) == SQLITE_OK)
        return true;
    error = sqlite3_errmsg(db_);
    return false;
}

std::unique_ptr<StateDatabase> StateDatabase::open(const SqliteOptions& o, std::string& error)
{
    auto d = std::make_unique<StateDatabase>();
    const auto fail = [&](const std::string& why) {
        error = o.path + ": " + why;
        if (d->db_)  // leave the file as it was: no checkpoint of a foreign WAL on close
            sqlite3_db_config(d->db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        return nullptr;
    };
    struct stat st {};
    if (::stat(o.path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        return fail("not a regular file");
    // SQLite's allocation statistics take a global mutex on every allocation; nothing reads
    // them. The setting must precede SQLite's initialisation, hence once, before the open.
    static const int no_memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)no_memstatus;
    if (sqlite3_open_v2(o.path.c_str(), &d->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
        return fail(d->db_ ? sqlite3_errmsg(d->db_) : "cannot open");
    sqlite3_extended_result_codes(d->db_, 1);
    // What the file is, read before anything is written to it.
    Statement q;
    std::string why;
    if (!d->prepare(q, "SELECT (SELECT application_id FROM pragma_application_id),"
                       " (SELECT user_version FROM pragma_user_version),"
                       " (SELECT count(*) FROM sqlite_schema)", why))
        return fail(why == "file is not a database" ? "not an SQLite database" : why);
    if (sqlite3_step(q.s) != SQLITE_ROW)
        return fail(sqlite3_errmsg(d->db_));
    const std::int32_t app = sqlite3_column_int(q.s, 0);
    const int version = sqlite3_column_int(q.s, 1);
    const int objects = sqlite3_column_int(q.s, 2);
    sqlite3_finalize(std::exchange(q.s, nullptr));
    const bool fresh = app == 0 && version == 0 && objects == 0;
    if (!fresh && app != kApplicationId)
        return fail("not a peerdex state database (SQLite application_id " + std::to_string(app) + ")");
    if (!fresh && version > kSchemaVersion)
        return fail("schema version " + std::to_string(version) + " is newer than this tracker's (" +
                    std::to_string(kSchemaVersion) + "): use the peerdex-tracker that wrote it, or a newer one");
    if (!fresh && version < 1)
        return fail("schema version " + std::to_string(version) + " is unknown");
    d->fresh_ = fresh;
    d->version_ = fresh ? kSchemaVersion : version;
    return d;
}

bool StateDatabase::writable(const SqliteOptions& o, std::string& error)
{
    std::string why;
    const auto fail = [&](const std::string& what) {
        error = o.path + ": " + what;
        return false;
    };
    // Each version step is one transaction that ends by setting user_version (see
    // peerdex-tracker(8), FILES). 1 -> 2: the owners (--auth); a connected user is taken
    // to belong to the address it is connected from, the others to nobody (open).
    if (!exec("PRAGMA journal_mode=WAL", why))
        return fail(why);
    if (!exec(o.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", why))
        return fail(why);
    if (fresh_) {
        const std::string create = std::string("BEGIN;") + kSchema + "PRAGMA application_id=" +
                                   std::to_string(kApplicationId) + ";PRAGMA user_version=" +
                                   std::to_string(kSchemaVersion) + ";COMMIT;";
        if (!exec(create.c_str(), why))
            return fail("cannot create the schema: " + why);
    }
    if (!fresh_ && version_ == 1) {
        if (!exec("BEGIN IMMEDIATE;"
                  "ALTER TABLE users ADD COLUMN owner TEXT;"
                  "ALTER TABLE users ADD COLUMN key BLOB;"
                  "UPDATE users SET owner = ip WHERE ip IS NOT NULL;"
                  "PRAGMA user_version=2;"
                  "COMMIT;",
                  why)) {
            exec("ROLLBACK", why);
            return fail("cannot migrate the schema from version 1 to 2: " + why);
        }
        version_ = 2;
    }
    // 2 -> 3: sizes and content ids of publications (peerdex/2), unknown for those stored before.
    if (!fresh_ && version_ == 2) {
        if (!exec("BEGIN IMMEDIATE;"
                  "ALTER TABLE publications ADD COLUMN size INTEGER;"
                  "ALTER TABLE publications ADD COLUMN content_id TEXT;"
                  "PRAGMA user_version=3;"
                  "COMMIT;",
                  why)) {
            exec("ROLLBACK", why);
            return fail("cannot migrate the schema from version 2 to 3: " + why);
        }
        version_ = 3;
    }
    if (!prepare(begin_, "BEGIN IMMEDIATE", why) || !prepare(commit_, "COMMIT", why) ||
        !prepare(ins_user_, "INSERT INTO users(name, owner, key) VALUES(?1, ?2, ?3)", why) ||
        !prepare(del_pubs_, "DELETE FROM publications WHERE user=?1", why) ||
        !prepare(del_user_, "DELETE FROM users WHERE name=?1", why) ||
        !prepare(connect_, "UPDATE users SET ip=?2, port=?3, connected=?4 WHERE name=?1", why) ||
        !prepare(disconnect_, "UPDATE users SET ip=NULL, port=NULL, connected=NULL WHERE name=?1", why) ||
        !prepare(publish_, "INSERT INTO publications(user, path, description, size, content_id) VALUES(?1, ?2, ?3, ?4, ?5)",
                 why) ||
        !prepare(remove_, "DELETE FROM publications WHERE user=?1 AND path=?2", why))
        return fail("not a peerdex state database of version " + std::to_string(kSchemaVersion) + " (" + why + ")");
    return true;
}

bool StateDatabase::load(Registry& into, std::int64_t& next_seq, std::string& error)
{
    return load_state(db_, version_, into, next_seq, error);
}

bool load_state(sqlite3* db, int version, Registry& into, std::int64_t& next_seq, std::string& error)
{
    const auto prepare = [db, &error](Statement& st, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr) == SQLITE_OK)
            return true;
        error = sqlite3_errmsg(db);
        return false;
    };
    const auto text = [](sqlite3_stmt* s, int col) {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
        return std::string_view(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
    };
    struct Connected {
        std::int64_t seq;
        detail::User* user;
        Address ip;
        std::uint16_t port;
    };
    std::vector<Connected> connected;
    Statement users, pubs;
    // Version 1 has no owners: a connected user belongs to its address (as the migration
    // to version 2 writes it), the others to nobody.
    const char* users_sql = version >= 2 ? "SELECT name, ip, port, connected, owner, key FROM users"
                                          : "SELECT name, ip, port, connected, ip, NULL FROM users";
    // Before version 3 no size or content id is known.
    const char* pubs_sql = version >= 3 ? "SELECT user, path, description, size, content_id FROM publications ORDER BY seq"
                                         : "SELECT user, path, description, NULL, NULL FROM publications ORDER BY seq";
    if (!prepare(users, users_sql) || !prepare(pubs, pubs_sql))
        return false;
    // The registry's tables sized once: growing them row by row rehashes every entry
    // many times over (a tenth of the start-up time of a million users). The user count
    // is exact; publications are counted by their highest sequence number (an index
    // lookup, where count(*) reads the whole table), which holes left by DELETE can make
    // larger than the count, so that estimate is bounded by the users' share.
    Statement sizes;
    if (!prepare(sizes, "SELECT (SELECT count(*) FROM users), (SELECT max(seq) FROM publications)"))
        return false;
    if (sqlite3_step(sizes.s) == SQLITE_ROW) {
        const auto users_n = static_cast<std::size_t>(sqlite3_column_int64(sizes.s, 0));
        const auto pubs_n = static_cast<std::size_t>(sqlite3_column_int64(sizes.s, 1));
        into.reserve(users_n, std::min(pubs_n, users_n * kReservePerUser));
    }
    next_seq = 1;
    int rc;
    while ((rc = sqlite3_step(users.s)) == SQLITE_ROW) {
        const std::string_view name = text(users.s, 0);
        Address owner;
        if (sqlite3_column_type(users.s, 4) != SQLITE_NULL && !Address::parse(std::string(text(users.s, 4)), owner)) {
            error = "user \"" + std::string(name) + "\" has an unreadable owner address";
            return false;
        }
        KeyHash key;
        const bool keyed = sqlite3_column_type(users.s, 5) != SQLITE_NULL;
        if (keyed) {
            if (static_cast<std::size_t>(sqlite3_column_bytes(users.s, 5)) != key.size()) {
                error = "user \"" + std::string(name) + "\" has a key hash of the wrong size";
                return false;
            }
            std::memcpy(key.data(), sqlite3_column_blob(users.s, 5), key.size());
        }
        detail::User* user = into.restore_user(name, owner, keyed ? &key : nullptr);
        if (!user) {
            error = "user \"" + std::string(name) + "\" is stored twice";
            return false;
        }
        if (sqlite3_column_type(users.s, 3) != SQLITE_NULL) {
            // Connections are numbered from 1 as they come; a port is what CONNECT accepts.
            const std::int64_t seq = sqlite3_column_int64(users.s, 3);
            const std::int64_t port = sqlite3_column_int64(users.s, 2);
            if (seq < 1 || seq == INT64_MAX) {
                error = "user \"" + std::string(name) + "\" has an impossible connection number";
                return false;
            }
            if (port < 1 || port > 65535) {
                error = "user \"" + std::string(name) + "\" has an impossible port";
                return false;
            }
            Connected c{seq, user, Address(), static_cast<std::uint16_t>(port)};
            if (!Address::parse(std::string(text(users.s, 1)), c.ip)) {
                error = "user \"" + std::string(name) + "\" has an unreadable address";
                return false;
            }
            next_seq = std::max(next_seq, c.seq + 1);
            connected.push_back(std::move(c));
        }
    }
    if (rc != SQLITE_DONE) {
        error = sqlite3_errmsg(db);
        return false;
    }
    std::sort(connected.begin(), connected.end(), [](const Connected& a, const Connected& b) { return a.seq < b.seq; });
    for (const Connected& c : connected)
        into.restore_connection(*c.user, c.ip, c.port);
    while ((rc = sqlite3_step(pubs.s)) == SQLITE_ROW) {
        // Read as the wire's fields (NULL: empty, unknown), so that one set of rules judges them.
        ContentMeta meta;
        if (!parse_content_meta(text(pubs.s, 3), text(pubs.s, 4), meta)) {
            error = "a publication of \"" + std::string(text(pubs.s, 0)) + "\" has an unreadable size or content id";
            return false;
        }
        if (into.restore_publication(text(pubs.s, 0), text(pubs.s, 1), text(pubs.s, 2), meta) != Outcome::ok) {
            error = "a publication of \"" + std::string(text(pubs.s, 0)) + "\" has no user or is stored twice";
            return false;
        }
    }
    if (rc != SQLITE_DONE) {
        error = sqlite3_errmsg(db);
        return false;
    }
    return true;
}

int StateDatabase::step(Statement& st)
{
    const int rc = sqlite3_step(st.s);
    sqlite3_reset(st.s);
    sqlite3_clear_bindings(st.s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int StateDatabase::run(const SqliteStore::Change& c)
{
    const auto bind = [](Statement& st, int i, const std::string& v) {
        sqlite3_bind_text(st.s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    };
    switch (c.op) {
    case Op::register_user:
        bind(ins_user_, 1, c.user);
        bind(ins_user_, 2, c.path);  // the owner's address
        if (!c.description.empty())  // the key's hash
            sqlite3_bind_blob(ins_user_.s, 3, c.description.data(), static_cast<int>(c.description.size()),
                              SQLITE_STATIC);
        return step(ins_user_);
    case Op::unregister_user:
        bind(del_pubs_, 1, c.user);
        if (const int rc = step(del_pubs_); rc != SQLITE_OK)
            return rc;
        bind(del_user_, 1, c.user);
        return step(del_user_);
    case Op::connect:
        bind(connect_, 1, c.user);
        bind(connect_, 2, c.path);
        sqlite3_bind_int(connect_.s, 3, c.port);
        sqlite3_bind_int64(connect_.s, 4, c.seq);
        return step(connect_);
    case Op::disconnect:
        bind(disconnect_, 1, c.user);
        return step(disconnect_);
    case Op::publish:
        bind(publish_, 1, c.user);
        bind(publish_, 2, c.path);
        bind(publish_, 3, c.description);
        if (c.meta.has_size)  // left unbound: NULL, unknown
            sqlite3_bind_int64(publish_.s, 4, static_cast<sqlite3_int64>(c.meta.size));
        if (c.meta.has_id) {
            const std::string id = content_id_text(c.meta.id);
            sqlite3_bind_text(publish_.s, 5, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
        }
        return step(publish_);
    case Op::remove:
        bind(remove_, 1, c.user);
        bind(remove_, 2, c.path);
        return step(remove_);
    case Op::hello:
    case Op::list_users:
    case Op::list_content:
    case Op::get_user_info:
    case Op::own:
    case Op::search:
    case Op::sources:
        break;
    }
    return SQLITE_MISUSE;
}

int StateDatabase::commit(const std::vector<SqliteStore::Change>& changes)
{
    int rc = step(begin_);
    for (auto it = changes.begin(); rc == SQLITE_OK && it != changes.end(); ++it)
        rc = run(*it);
    if (rc == SQLITE_OK)
        rc = step(commit_);
    if (rc != SQLITE_OK) {
        message_ = sqlite3_errmsg(db_);
        if (!sqlite3_get_autocommit(db_))
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return rc;
}

// ---- SqliteStore ------------------------------------------------------------------------

struct SqliteStore::Job {
    uv_work_t req{};
    SqliteStore* store = nullptr;
    bool reload = false;
    int rc = 0;
    std::string error;
    std::unique_ptr<Registry> registry;  // reload: the stored state
    std::int64_t next_seq = 1;
    std::uint64_t commit_ns = 0;  // how long the transaction took, on the pool's thread
};

std::unique_ptr<SqliteStore> SqliteStore::open(uv_loop_t* loop, const SqliteOptions& options, std::string& error)
{
    std::unique_ptr<StateDatabase> db = StateDatabase::open(options, error);
    if (!db)
        return nullptr;
    auto registry = std::make_unique<Registry>(options.auth, options.search_budget);
    std::int64_t next_seq = 1;
    std::string why;
    if (!db->fresh() && !db->load(*registry, next_seq, why)) {
        error = options.path + ": cannot load the state: " + why;
        db->untouched();
        return nullptr;
    }
    if (!db->writable(options, error))
        return nullptr;
    return std::unique_ptr<SqliteStore>(
        new SqliteStore(loop, std::move(db), std::move(registry), next_seq, options.path, options));
}

SqliteStore::SqliteStore(uv_loop_t* loop, std::unique_ptr<StateDatabase> db, std::unique_ptr<Registry> registry,
                         std::int64_t next_seq, std::string path, const SqliteOptions& options)
    : loop_(loop),
      auth_(options.auth),
      search_budget_(options.search_budget),
      db_(std::move(db)),
      registry_(std::move(registry)),
      next_seq_(next_seq),
      path_(std::move(path)),
      turn_end_(std::make_unique<uv_idle_t>().release())
{
    uv_idle_init(loop_, turn_end_);
    turn_end_->data = this;
}

SqliteStore::~SqliteStore()
{
    if (turn_end_)  // close() was not called: the loop goes away with us
        uv_close(reinterpret_cast<uv_handle_t*>(turn_end_),
                 [](uv_handle_t* h) { std::unique_ptr<uv_idle_t> gone(reinterpret_cast<uv_idle_t*>(h)); });
}

void SqliteStore::hold(Completion& done, std::function<void()> request)
{
    if (held_.size() >= kMaxHeld) {
        done(Outcome::failed);  // the registry being replaced cannot answer it
        return;
    }
    held_.push_back(std::move(request));
}

std::unique_ptr<ListStream> SqliteStore::stream(ListCursor&& cursor)
{
    return std::make_unique<CursorStream>(std::move(cursor));
}

void SqliteStore::answer(Completion& done, StoreReply&& reply)
{
    if (committing_ == nullptr && open_.changes.empty()) {
        done(std::move(reply));  // nothing it could depend on is pending
        return;
    }
    Batch& after = open_.changes.empty() ? *committing_ : open_;
    after.waiters.push_back({done, std::move(reply)});
    // The commit starts once the loop has run the callbacks of this turn (the idle handle
    // runs before the next poll), so that one transaction carries every request of the turn.
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(turn_end_)))
        uv_idle_start(turn_end_, [](uv_idle_t* c) {
            uv_idle_stop(c);
            static_cast<SqliteStore*>(c->data)->kick();
        });
}

void SqliteStore::answer(Completion& done, Outcome outcome)
{
    StoreReply r;
    r.outcome = outcome;
    answer(done, std::move(r));
}

void SqliteStore::changed(Change&& change)
{
    open_.bytes += sizeof change + change.user.size() + change.path.size() + change.description.size();
    open_.changes.push_back(std::move(change));
}

namespace {

// A requester kept while the registry is reloaded: its key copied, as the view goes.
struct Held {
    explicit Held(const Requester& by) : ip(by.ip), key(by.key) {}
    Requester view() const { return {ip, key}; }
    Address ip;
    std::string key;
};

}  // namespace

void SqliteStore::register_user(std::string_view user, const Requester& by, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), done] { register_user(u, h.view(), done); });
    const Outcome o = registry_->register_user(user, by);
    if (o == Outcome::ok) {
        // The owner's address as text, and the key's hash (never the key) as a blob.
        const detail::User* added = registry_->user(user);
        std::string key;
        if (added->key)
            key.assign(reinterpret_cast<const char*>(added->key->data()), added->key->size());
        changed({Op::register_user, std::string(user), by.ip.str(), std::move(key), 0, 0, {}});
    }
    answer(done, o);
}

void SqliteStore::unregister_user(std::string_view user, const Requester& by, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), done] { unregister_user(u, h.view(), done); });
    const Outcome o = registry_->unregister_user(user, by);
    if (o == Outcome::ok)
        changed({Op::unregister_user, std::string(user), {}, {}, 0, 0, {}});
    answer(done, o);
}

void SqliteStore::connect(std::string_view user, const Requester& by, std::uint16_t port, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), port, done] { connect(u, h.view(), port, done); });
    const Outcome o = registry_->connect(user, by.ip, port, by);
    if (o == Outcome::ok)
        changed({Op::connect, std::string(user), by.ip.str(), {}, port, next_seq_++, {}});
    answer(done, o);
}

void SqliteStore::disconnect(std::string_view user, const Requester& by, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), done] { disconnect(u, h.view(), done); });
    const Outcome o = registry_->disconnect(user, by);
    if (o == Outcome::ok)
        changed({Op::disconnect, std::string(user), {}, {}, 0, 0, {}});
    answer(done, o);
}

void SqliteStore::publish(std::string_view user, const Requester& by, std::string_view path,
                          std::string_view description, const ContentMeta& meta, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), p = std::string(path), d = std::string(description),
                           meta, done] { publish(u, h.view(), p, d, meta, done); });
    const Outcome o = registry_->publish(user, path, description, by, meta);
    if (o == Outcome::ok)
        changed({Op::publish, std::string(user), std::string(path), std::string(description), 0, 0, meta});
    answer(done, o);
}

void SqliteStore::remove(std::string_view user, const Requester& by, std::string_view path, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), p = std::string(path), done] {
            remove(u, h.view(), p, done);
        });
    const Outcome o = registry_->remove(user, path, by);
    if (o == Outcome::ok)
        changed({Op::remove, std::string(user), std::string(path), {}, 0, 0, {}});
    answer(done, o);
}

void SqliteStore::owns(std::string_view user, const Requester& by, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), h = Held(by), done] { owns(u, h.view(), done); });
    answer(done, registry_->owns(user, by));
}

void SqliteStore::list_users(std::string_view requester, Completion done)
{
    if (recovering_)
        return hold(done, [this, r = std::string(requester), done] { list_users(r, done); });
    ListCursor cursor;
    StoreReply reply;
    reply.outcome = registry_->list_users(requester, cursor);
    if (reply.outcome == Outcome::ok)
        reply.list = stream(std::move(cursor));
    answer(done, std::move(reply));
}

void SqliteStore::list_content(std::string_view requester, std::string_view target, Completion done)
{
    if (recovering_)
        return hold(done, [this, r = std::string(requester), t = std::string(target), done] { list_content(r, t, done); });
    ListCursor cursor;
    StoreReply reply;
    reply.outcome = registry_->list_content(requester, target, cursor);
    if (reply.outcome == Outcome::ok)
        reply.list = stream(std::move(cursor));
    answer(done, std::move(reply));
}

void SqliteStore::get_user_info(std::string_view requester, std::string_view target, Completion done)
{
    if (recovering_)
        return hold(done, [this, r = std::string(requester), t = std::string(target), done] { get_user_info(r, t, done); });
    StoreReply reply;
    reply.outcome = registry_->get_user_info(requester, target, reply.ip, reply.port);
    answer(done, std::move(reply));
}

void SqliteStore::search(std::string_view requester, const SearchRequest& request, Completion done)
{
    if (recovering_) {
        std::optional<SearchQuery> query;
        if (request.query)
            query = *request.query;
        return hold(done, [this, r = std::string(requester), query, limit = request.limit, done] {
            search(r, {query ? &*query : nullptr, limit}, done);
        });
    }
    answer(done, search_reply(*registry_, requester, request));
}

// Read from the registry, which holds every publication and its id: no SQL runs, so the
// table needs no index on content_id for it.
void SqliteStore::sources(std::string_view requester, const SourcesRequest& request, Completion done)
{
    if (recovering_) {
        std::optional<Digest> id;
        if (request.id)
            id = *request.id;
        return hold(done, [this, r = std::string(requester), id, limit = request.limit, done] {
            sources(r, {id ? &*id : nullptr, limit}, done);
        });
    }
    answer(done, sources_reply(*registry_, requester, request));
}

void SqliteStore::walk_connected(std::size_t max, Completion done)
{
    if (recovering_)
        return hold(done, [this, max, done] { walk_connected(max, done); });
    // Not held for the open batch: the prober is no client, and probing a connection a
    // crash could take back does no harm (its expiry is a change like any other).
    done(walk_reply(*registry_, max));
}

void SqliteStore::expire(std::string_view user, const Address& ip, std::uint16_t port, Completion done)
{
    if (recovering_)
        return hold(done, [this, u = std::string(user), ip, port, done] { expire(u, ip, port, done); });
    const Outcome o = registry_->expire(user, ip, port);
    if (o == Outcome::ok)
        changed({Op::disconnect, std::string(user), {}, {}, 0, 0, {}});
    answer(done, o);
}

StoreCounts SqliteStore::counts() const
{
    return {registry_->user_count(), registry_->connected_count(), registry_->publication_count()};
}

bool SqliteStore::saturated() const
{
    return open_.changes.size() >= kMaxBatchChanges || open_.bytes >= kMaxBatchBytes || held_.size() >= kMaxHeld;
}

// Starts committing the open batch when no other commit (or reload) is under way.
void SqliteStore::kick()
{
    if (committing_ || recovering_ || open_.changes.empty())
        return;
    committing_ = std::make_unique<Batch>(std::move(open_));
    open_ = Batch();
    auto job = std::make_unique<Job>();
    job->store = this;
    job->req.data = job.get();
    uv_queue_work(loop_, &job.release()->req, work, after);  // freed in after()
}

void SqliteStore::work(uv_work_t* req)
{
    auto* job = static_cast<Job*>(req->data);
    SqliteStore& self = *job->store;
    if (job->reload) {
        job->registry = std::make_unique<Registry>(self.auth_, self.search_budget_);
        job->rc = self.db_->load(*job->registry, job->next_seq, job->error) ? 0 : 1;
        return;
    }
    const std::uint64_t start = uv_hrtime();
    job->rc = self.db_->commit(self.committing_->changes);
    job->commit_ns = uv_hrtime() - start;
    if (job->rc != 0)
        job->error = self.db_->message();
}

void SqliteStore::after(uv_work_t* req, int)
{
    std::unique_ptr<Job> job(static_cast<Job*>(req->data));
    if (job->reload)
        job->store->reloaded(*job);
    else
        job->store->committed(*job);
}

void SqliteStore::committed(Job& job)
{
    std::unique_ptr<Batch> batch = std::move(committing_);
    commits_.observe_ns(job.commit_ns);
    if (job.rc == 0) {
        for (Waiter& w : batch->waiters)
            w.done(std::move(w.reply));
        // Registries replaced after a failure go once nothing streams from them.
        retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                      [](const std::unique_ptr<Registry>& r) { return !r->has_cursors(); }),
                       retired_.end());
        kick();
        finish_if_closing();
        return;
    }
    // Nothing of this batch is stored, and what was applied after it was applied on top of
    // it: every answer that depends on either is refused, and the registry is reloaded
    // from the database, which holds exactly what was acknowledged.
    Console::error("s> state: cannot commit %zu changes to %s: %s; they are refused and the stored state is "
                   "reloaded",
                   batch->changes.size() + open_.changes.size(), path_.c_str(), job.error.c_str());
    Batch later = std::move(open_);
    open_ = Batch();
    for (Batch* b : {batch.get(), &later})
        for (Waiter& w : b->waiters)
            w.done(Outcome::failed);
    recovering_ = true;
    auto reload = std::make_unique<Job>();
    reload->store = this;
    reload->reload = true;
    reload->req.data = reload.get();
    uv_queue_work(loop_, &reload.release()->req, work, after);
}

void SqliteStore::reloaded(Job& job)
{
    if (job.rc != 0) {
        // The database cannot even be read back: serving on from memory would acknowledge
        // what may never be stored. Stop with the reason; what is stored stays consistent.
        Console::error("peerdex-tracker: %s: cannot reload the state after a failed commit: %s", path_.c_str(),
                       job.error.c_str());
        Console::flush();
        std::_Exit(1);
    }
    if (registry_->has_cursors())
        retired_.push_back(std::move(registry_));
    registry_ = std::move(job.registry);
    next_seq_ = job.next_seq;
    recovering_ = false;
    std::vector<std::function<void()>> replay;
    replay.swap(held_);
    for (auto& request : replay)
        request();
    kick();
    finish_if_closing();
}

void SqliteStore::close(void (*closed)(void* ctx), void* ctx)
{
    closing_ = true;
    closed_ = closed;
    closed_ctx_ = ctx;
    kick();  // what is pending is committed first
    finish_if_closing();
}

void SqliteStore::finish_if_closing()
{
    if (!closing_ || committing_ || recovering_ || !open_.changes.empty() || !closed_)
        return;
    db_.reset();  // the last connection: SQLite checkpoints the WAL into the file
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(turn_end_, nullptr)), [](uv_handle_t* h) {
        std::unique_ptr<uv_idle_t> check(reinterpret_cast<uv_idle_t*>(h));
        auto* self = static_cast<SqliteStore*>(check->data);
        auto closed = std::exchange(self->closed_, nullptr);
        closed(self->closed_ctx_);
    });
}

}  // namespace peerdex
