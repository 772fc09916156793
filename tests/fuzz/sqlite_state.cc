// The durable store's loader (peerdex-protocol(7), TRACKER STATE), which trusts nothing in
// the file: an operator's hand edit or a damaged file gives a clear refusal, never a crash.
// The input is a set of rows: fields separated by NUL, six per row, the first of each row
// saying which table; a field starting with 'n' is NULL, 'i' an integer, 'b' a blob, any
// other byte text. The choice byte picks the schema version the loader reads (1 to 3).
#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "pieces.hh"
#include "registry.hh"
#include "sqlite_store.hh"

using namespace peerdex;
using peerdex::fuzz::check;

namespace {

// The schema of the newest version: the loader reads only the columns its version had.
const char* const kSchema =
    "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, ip TEXT, port INTEGER, connected INTEGER,"
    " owner TEXT, key BLOB) WITHOUT ROWID;"
    "CREATE TABLE publications (seq INTEGER PRIMARY KEY, user TEXT NOT NULL, path TEXT NOT NULL,"
    " description TEXT NOT NULL, size INTEGER, content_id TEXT, UNIQUE (user, path));";

void bind(sqlite3_stmt* st, int col, std::string_view f)
{
    const std::string_view rest = f.empty() ? f : f.substr(1);
    const char kind = f.empty() ? 't' : f[0];
    if (kind == 'n')
        sqlite3_bind_null(st, col);
    else if (kind == 'i')
        sqlite3_bind_int64(st, col, std::strtoll(std::string(rest).c_str(), nullptr, 10));
    else if (kind == 'b')
        sqlite3_bind_blob(st, col, rest.data(), static_cast<int>(rest.size()), SQLITE_TRANSIENT);
    else
        sqlite3_bind_text(st, col, rest.data(), static_cast<int>(rest.size()), SQLITE_TRANSIENT);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    std::vector<std::string_view> fields;
    for (std::string_view rest = in.bytes; !rest.empty();) {
        const std::size_t nul = rest.find('\0');
        fields.push_back(rest.substr(0, nul));
        rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    }
    if (fields.size() > 6 * 64)
        return 0;  // a few dozen rows reach every branch; more only slows the fuzzer
    sqlite3* db = nullptr;
    check(sqlite3_open(":memory:", &db) == SQLITE_OK, "no in-memory database");
    check(sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr) == SQLITE_OK, "schema");
    sqlite3_stmt* users = nullptr;
    sqlite3_stmt* pubs = nullptr;
    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO users VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &users, nullptr);
    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO publications VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &pubs, nullptr);
    for (std::size_t row = 0; row + 6 <= fields.size(); row += 6) {
        sqlite3_stmt* st = !fields[row].empty() && (fields[row][0] & 1) ? pubs : users;
        for (int col = 0; col < 6; ++col)
            bind(st, col + 1, col == 0 && st == pubs ? std::string_view("i") : fields[row + static_cast<std::size_t>(col)]);
        if (st == pubs)  // the first field chose the table; the seq is the row's number
            sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(row / 6) * (fields[row].size() > 1 ? INT64_MAX / 64 : 1));
        sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(users);
    sqlite3_finalize(pubs);
    Registry registry(in.seed & 0x10 ? AuthMode::key : AuthMode::none);
    std::int64_t next_seq = 0;
    std::string error;
    const int version = 1 + in.seed % 3;
    if (load_state(db, version, registry, next_seq, error)) {
        check(error.empty(), "an error reported with success");
        check(next_seq >= 1, "the next connection number is not positive");
        check(registry.connected_count() <= registry.user_count(), "more connected than registered");
    } else {
        check(!error.empty(), "a refusal without a reason");
    }
    sqlite3_close(db);
    return 0;
}
