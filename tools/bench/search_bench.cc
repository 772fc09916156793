// peerdex-search-bench: SEARCH in process, against SQLite FTS5 on the same corpus and the
// same queries (docs/PERFORMANCE.md, "Search"). The corpus is generated: a Zipf-like
// vocabulary of file names and descriptions, N publications over U users, every user
// connected. It reports the search index's memory per publication (heap bytes with the
// index minus without it), the CPU time of PUBLISH and DELETE with and without it, and,
// for one set of queries (1-3 include terms, some of them prefixes, limit 100), queries
// per second and latency percentiles of the tracker's registry and of FTS5.
#include <malloc.h>
#include <sqlite3.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "registry.hh"
#include "search.hh"

namespace {

using peerdex::Registry;

struct Rng {
    std::uint64_t s;
    std::uint64_t next()
    {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }  // < n
};

// Words ranked by frequency: word i is drawn with probability proportional to 1/(i+1)^s.
class Zipf {
public:
    Zipf(std::size_t n, double s, Rng& rng)
    {
        cdf_.resize(n);
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i)
            cdf_[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
        for (double& c : cdf_)
            c /= sum;
        const char* letters = "abcdefghijklmnopqrstuvwxyz";
        words_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::string w;
            const std::size_t len = 3 + rng.below(7);
            for (std::size_t k = 0; k < len; ++k)
                w += letters[rng.below(26)];
            words_.push_back(w + (i % 7 == 0 ? std::to_string(i % 100) : ""));
        }
    }
    const std::string& draw(Rng& rng) const
    {
        const double u = rng.unit();
        return words_[std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin()];
    }
    const std::string& word(std::size_t rank) const { return words_[rank]; }

private:
    std::vector<double> cdf_;
    std::vector<std::string> words_;
};

struct Pub {
    std::string user, path, description;
};

std::size_t heap_bytes()
{
    const struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

double cpu_now()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_now()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Built {
    std::unique_ptr<Registry> registry;
    std::size_t bytes = 0;
    double publish_cpu = 0;
};

Built build(const std::vector<Pub>& corpus, std::size_t users, bool index)
{
    Built b;
    const std::size_t before = heap_bytes();
    b.registry = std::make_unique<Registry>(peerdex::AuthMode::none, index ? peerdex::kDefaultSearchBudget : 0);
    b.registry->reserve(users, corpus.size());
    peerdex::Address ip;
    peerdex::Address::parse("127.0.0.1", ip);
    for (std::size_t u = 0; u < users; ++u) {
        const std::string name = "user" + std::to_string(u);
        b.registry->register_user(name);
        b.registry->connect(name, ip, static_cast<std::uint16_t>(1024 + u % 60000));
    }
    const double t0 = cpu_now();
    for (const Pub& p : corpus)
        if (b.registry->publish(p.user, p.path, p.description) != peerdex::Outcome::ok) {
            std::fprintf(stderr, "duplicate publication %s %s\n", p.user.c_str(), p.path.c_str());
            std::exit(1);
        }
    b.publish_cpu = cpu_now() - t0;
    b.bytes = heap_bytes() - before;
    return b;
}

double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// The corpus as one HELLO session's requests (every user registered and connected, then
// every publication), the queries one per line, and the worst case: the most frequent
// word alone, matching a large part of the corpus.
bool write_dump(const std::string& dir, const std::vector<Pub>& corpus, std::size_t users,
                const std::vector<std::string>& queries, const Zipf& words)
{
    std::string load;
    const auto field = [&](const std::string& f) {
        load += f;
        load.push_back('\0');
    };
    field("HELLO");
    field("peerdex/1");
    for (std::size_t u = 0; u < users; ++u) {
        field("REGISTER");
        field("user" + std::to_string(u));
        field("CONNECT");
        field("user" + std::to_string(u));
        field(std::to_string(1024 + u % 60000));
    }
    for (const Pub& p : corpus) {
        field("PUBLISH");
        field(p.user);
        field(p.path);
        field(p.description);
    }
    const auto write = [&](const std::string& name, const std::string& data) {
        std::FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
        const bool ok = f && std::fwrite(data.data(), 1, data.size(), f) == data.size();
        return (f ? std::fclose(f) == 0 : false) && ok;
    };
    std::string q;
    for (const std::string& text : queries)
        q += text + "\n";
    return write("load.bin", load) && write("queries.txt", q) && write("worst.txt", words.word(0) + "\n");
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t n = 2000000, users = 20000, nqueries = 20000;
    std::size_t vocab = 100000;
    std::string dump;
    double slow_us = 0;  // --slow: print each query slower than this, with its hits
    bool with_fts = true;
    std::string only;  // --only: every query is this one (to profile it)
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const auto v = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
        if (a == "--dump")
            dump = argv[i + 1];
        else if (a == "--publications")
            n = v;
        else if (a == "--users")
            users = v;
        else if (a == "--queries")
            nqueries = v;
        else if (a == "--vocabulary")
            vocab = v;
        else if (a == "--slow")
            slow_us = static_cast<double>(v);
        else if (a == "--only")
            only = argv[i + 1];
        else if (a == "--fts")
            with_fts = v != 0;
        else {
            std::fprintf(stderr, "usage: peerdex-search-bench [--publications N] [--users U] [--queries Q] "
                                 "[--vocabulary V] [--dump DIR] [--slow US] [--fts 0|1] [--only QUERY]\n"
                                 "--dump DIR writes the corpus as the requests of one HELLO session (DIR/load.bin),\n"
                                 "the queries (DIR/queries.txt) and a worst case (DIR/worst.txt), and stops.\n"
                                 "--slow US prints each query slower than US microseconds; --fts 0 skips FTS5;\n"
                                 "--only QUERY makes every query QUERY, to profile one.\n");
            return 2;
        }
    }
    Rng rng{42};
    const Zipf words(vocab, 1.0, rng);
    const char* exts[] = {"mp3", "ogg", "flac", "pdf", "txt", "mkv", "avi", "jpg", "iso", "epub"};
    std::vector<Pub> corpus;
    corpus.reserve(n);
    std::set<std::pair<std::string, std::string>> taken;  // (user, path): PUBLISH refuses a second one
    while (corpus.size() < n) {
        const std::size_t u = rng.below(users);
        Pub p;
        p.user = "user" + std::to_string(u);
        // /home/USER/DIR/WORD_WORD-NN.EXT, NN a track number from 01 to 20
        char track[8];
        std::snprintf(track, sizeof track, "%02zu", 1 + rng.below(20));
        p.path = "/home/" + p.user + "/" + words.draw(rng) + "/" + words.draw(rng) + "_" + words.draw(rng) + "-" +
                 track + "." + exts[rng.below(std::size(exts))];
        if (!taken.emplace(p.user, p.path).second)
            continue;
        const std::size_t dw = 1 + rng.below(4);
        for (std::size_t k = 0; k < dw; ++k)
            p.description += (k ? " " : "") + words.draw(rng);
        corpus.push_back(std::move(p));
    }
    std::printf("corpus: %zu publications over %zu users, vocabulary %zu (Zipf s=1)\n", n, users, vocab);
    // Queries: 1-3 include terms drawn from the vocabulary by frequency; one in three
    // terms cut to a prefix of 3 or more letters.
    std::vector<std::string> queries;
    for (std::size_t i = 0; i < nqueries; ++i) {
        std::string q;
        const std::size_t terms = 1 + rng.below(3);
        for (std::size_t k = 0; k < terms; ++k) {
            std::string w = words.draw(rng);
            if (rng.below(3) == 0 && w.size() > 3)
                w.resize(3 + rng.below(w.size() - 3));
            q += (k ? " " : "") + w;
        }
        queries.push_back(only.empty() ? q : only);
    }

    if (!dump.empty())
        return write_dump(dump, corpus, users, queries, words) ? 0 : 1;

    // Memory and PUBLISH cost, without the index then with it.
    double plain_cpu, plain_bytes;
    {
        Built plain = build(corpus, users, false);
        plain_cpu = plain.publish_cpu;
        plain_bytes = static_cast<double>(plain.bytes);
    }
    Built indexed = build(corpus, users, true);
    Registry& reg = *indexed.registry;
    const double per_pub = (static_cast<double>(indexed.bytes) - plain_bytes) / static_cast<double>(n);
    std::printf("memory: %.1f B per publication without the index, %.1f B with it: the index costs %.1f B "
                "per publication (lists and id table %.1f B)\n",
                plain_bytes / static_cast<double>(n), static_cast<double>(indexed.bytes) / static_cast<double>(n),
                per_pub, static_cast<double>(reg.search_index_bytes()) / static_cast<double>(n));
    std::printf("PUBLISH in process: %.3f us without the index, %.3f us with it\n", plain_cpu / static_cast<double>(n) * 1e6,
                indexed.publish_cpu / static_cast<double>(n) * 1e6);

    std::vector<double> lat;
    lat.reserve(nqueries);
    std::size_t hits = 0;
    peerdex::SearchHits out;
    double ours = 0;
    // The default budget first (the figure compared with FTS5), then the default of before
    // and smaller ones: what each saves in latency and what it costs in hits.
    for (const std::size_t budget : {peerdex::kDefaultSearchBudget, std::size_t{20000}, std::size_t{5000}, std::size_t{1000}}) {
        reg.set_search_budget(budget);
        lat.clear();
        hits = 0;
        std::size_t named = 0;
        const double w0 = wall_now();
        for (const std::string& text : queries) {
            peerdex::SearchQuery q;
            peerdex::parse_query(text, q);
            // A fresh answer, as the tracker's SEARCH makes; the last one goes after the
            // clock stops, as the tracker's goes when its reply has been sent.
            peerdex::SearchHits fresh;
            const double t = wall_now();
            reg.search("user0", {&q, 100}, fresh);
            lat.push_back(wall_now() - t);
            out = std::move(fresh);
            hits += out.size();
            for (std::size_t i = 0; i < out.size(); ++i) {
                const peerdex::SearchHit h = out[i];
                named += peerdex::match(q, h.path, h.description) == peerdex::Match::name;
            }
            if (slow_us > 0 && lat.back() * 1e6 > slow_us && budget == peerdex::kDefaultSearchBudget)
                std::printf("slow: %.0f us, %zu hits: %s\n", lat.back() * 1e6, out.size(), text.c_str());
        }
        const double took = wall_now() - w0;
        if (budget == peerdex::kDefaultSearchBudget)
            ours = took;
        std::printf("peerdex (budget %zu): %.0f queries/s, p50 %.1f us, p99 %.1f us, max %.1f us, %.2f hits per query "
                    "(%.2f in the file-name group)\n",
                    budget, static_cast<double>(nqueries) / took, percentile(lat, 0.5) * 1e6,
                    percentile(lat, 0.99) * 1e6, percentile(lat, 1.0) * 1e6,
                    static_cast<double>(hits) / static_cast<double>(nqueries),
                    static_cast<double>(named) / static_cast<double>(nqueries));
    }
    reg.set_search_budget(peerdex::kDefaultSearchBudget);
    if (!with_fts)
        return 0;

    // SQLite FTS5 on the same corpus (unicode61 tokenizer), newest first, LIMIT 100.
    sqlite3* db = nullptr;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE VIRTUAL TABLE pubs USING fts5(path, description, tokenize='unicode61')", nullptr,
                     nullptr, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "FTS5: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO pubs(path, description) VALUES (?, ?)", -1, &ins, nullptr);
    for (const Pub& p : corpus) {
        sqlite3_bind_text(ins, 1, p.path.data(), static_cast<int>(p.path.size()), SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, p.description.data(), static_cast<int>(p.description.size()), SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_stmt* sel = nullptr;
    sqlite3_prepare_v2(db, "SELECT rowid, path, description FROM pubs WHERE pubs MATCH ? ORDER BY rowid DESC LIMIT 100",
                       -1, &sel, nullptr);
    lat.clear();
    hits = 0;
    const double f0 = wall_now();
    for (const std::string& text : queries) {
        std::string match;  // each term a prefix query: "term"*
        std::size_t b = 0;
        while (b < text.size()) {
            const std::size_t e = std::min(text.find(' ', b), text.size());
            match += (match.empty() ? "\"" : " \"") + text.substr(b, e - b) + "\"*";
            b = e + 1;
        }
        const double t = wall_now();
        sqlite3_bind_text(sel, 1, match.data(), static_cast<int>(match.size()), SQLITE_TRANSIENT);
        while (sqlite3_step(sel) == SQLITE_ROW)
            ++hits;
        sqlite3_reset(sel);
        lat.push_back(wall_now() - t);
    }
    const double fts = wall_now() - f0;
    std::printf("FTS5:    %.0f queries/s, p50 %.1f us, p99 %.1f us, max %.1f us, %.1f hits per query\n",
                static_cast<double>(nqueries) / fts, percentile(lat, 0.5) * 1e6, percentile(lat, 0.99) * 1e6,
                percentile(lat, 1.0) * 1e6, static_cast<double>(hits) / static_cast<double>(nqueries));
    std::printf("ratio: peerdex/FTS5 queries per second %.2f\n", fts / ours);
    sqlite3_finalize(sel);
    sqlite3_close(db);

    // DELETE: a tenth of the publications, with and without the index.
    std::vector<std::size_t> victims;
    for (std::size_t i = 0; i < n / 10; ++i)
        victims.push_back(rng.below(n));
    std::sort(victims.begin(), victims.end());
    victims.erase(std::unique(victims.begin(), victims.end()), victims.end());
    const auto del = [&](Registry& r) {
        const double t0 = cpu_now();
        for (std::size_t v : victims)
            r.remove(corpus[v].user, corpus[v].path);
        return (cpu_now() - t0) / static_cast<double>(victims.size()) * 1e6;
    };
    const double del_indexed = del(reg);
    indexed.registry.reset();
    Built plain = build(corpus, users, false);
    std::printf("DELETE in process: %.3f us without the index, %.3f us with it\n", del(*plain.registry), del_indexed);
    return 0;
}
