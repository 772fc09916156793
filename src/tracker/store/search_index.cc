#include "search_index.hh"

#include <algorithm>
#include <queue>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace peerdex {

namespace {

constexpr std::uint32_t kNameBit = 1u << 31;
// How many candidates wait in each of the two queues of candidates().
constexpr std::size_t kAhead = 8;
// The share of the budget left for file-name matches once the visitor holds enough others.
constexpr std::size_t kNamedShare = 4;
// The postings a query may merge from its terms' small lists (see candidates()).
constexpr std::size_t kMergeCap = 2048;
// A walk of one or two sparse lists merges 64 candidates at a time with the first term's
// lists when those hold at most this many times the walk's postings (see candidates()).
constexpr std::size_t kMergeRatio = 16;
// A token becomes dense when it is in more than one id in kDense of those given, and sparse
// again below one in kSparse: a bitmap costs 2 bits per id, a posting 32 bits, so a bitmap
// costs at most twice its list when it is made and four times before it is undone.
constexpr std::size_t kDense = 32;
constexpr std::size_t kSparse = 64;

// A dense token's bitmap holds, per 64 ids from id 0, a word of the documents holding the
// token and then a word of those holding it in the file name: the pair of an id starts at
// word_of(id), and bit_of(id) is the id's bit in each word of it.
std::size_t word_of(SearchIndex::Id id)
{
    return std::size_t{id} / 64 * 2;
}

std::uint64_t bit_of(SearchIndex::Id id)
{
    return std::uint64_t{1} << (id % 64);
}

void set_bits(std::uint64_t* pair, SearchIndex::Id id, bool named)
{
    pair[0] |= bit_of(id);
    pair[1] |= named ? bit_of(id) : 0;
}

// The first eight bytes of `text` as a number whose order is theirs (zero-padded).
std::uint64_t head_of(std::string_view text)
{
    std::uint64_t h = 0;
    for (std::size_t i = 0; i < 8; ++i)
        h = h << 8 | (i < text.size() ? static_cast<unsigned char>(text[i]) : 0u);
    return h;
}

char fold_byte(char c)
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Appends to a list, growing it by a quarter: at a few postings per publication, the
// slack of doubling would be most of the index's memory.
void append(std::vector<SearchIndex::Id>& v, SearchIndex::Id x)
{
    if (v.size() == v.capacity())
        v.reserve(v.size() + v.size() / 4 + 2);
    v.push_back(x);
}

// Which of the postings w[0..n) (n <= 64, ascending, one per id) have their id in the list
// l[0..m) (ascending; a merged list may hold an id twice): bit k of `any` for w[k], and of
// `named` when one of those postings in l is in a file name. A merge of the two, four
// postings of each at a time where SSE2 is there (every pair of the two fours compared at
// once), one at a time for the rest. Keys are compared whole, w's with the name bit set,
// so that a four of w is passed only once l has reached the last key its ids can have:
// a merged list's second posting of an id is never left behind.
void intersect(const SearchIndex::Id* w, std::size_t n, const SearchIndex::Id* l, std::size_t m,
               std::uint64_t& any, std::uint64_t& named)
{
    std::size_t a = 0, b = 0;
#if defined(__SSE2__)
    const __m128i one = _mm_set1_epi32(1);
    const auto any_of = [](__m128i x, __m128i y) {  // lanes of x equal to some lane of y
        const __m128i e0 = _mm_cmpeq_epi32(x, y);
        const __m128i e1 = _mm_cmpeq_epi32(x, _mm_shuffle_epi32(y, 0x39));
        const __m128i e2 = _mm_cmpeq_epi32(x, _mm_shuffle_epi32(y, 0x4e));
        const __m128i e3 = _mm_cmpeq_epi32(x, _mm_shuffle_epi32(y, 0x93));
        return static_cast<unsigned>(
            _mm_movemask_ps(_mm_castsi128_ps(_mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3)))));
    };
    // Each four of l is compared with every four of w its range meets, and l moves on by
    // four each time: where l goes next does not wait on what its last four held, so its
    // loads (the long list's, from memory) are issued ahead. w is short and in cache.
    while (a + 4 <= n && b + 4 <= m) {
        const __m128i lv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(l + b));
        const __m128i lk = _mm_srli_epi32(lv, 1);
        const SearchIndex::Id ll = l[b + 3];
        for (;;) {
            const __m128i wv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + a));
            const unsigned hit = any_of(_mm_srli_epi32(wv, 1), lk);
            if (hit != 0) {
                any |= std::uint64_t{hit} << a;
                named |= std::uint64_t{any_of(_mm_or_si128(wv, one), lv)} << a;
            }
            if ((w[a + 3] | 1) > ll)
                break;  // w's four reach past l's: compared with l's next four too
            a += 4;
            if (a + 4 > n)
                break;
        }
        if (a + 4 > n)
            break;
        b += 4;
    }
#endif
    while (a < n && b < m) {
        const SearchIndex::Id wk = w[a] | 1, lk = l[b];
        if ((wk >> 1) == (lk >> 1)) {
            any |= std::uint64_t{1} << a;
            named |= std::uint64_t{lk & 1} << a;
        }
        a += wk <= lk ? 1 : 0;
        b += lk <= wk ? 1 : 0;
    }
}

}  // namespace

SearchIndex::~SearchIndex()
{
    by_text_.for_each([](Token* t) { delete t; });
}

void SearchIndex::gather(std::string_view path, std::string_view description)
{
    scratch_.text.clear();
    scratch_.spans.clear();
    const std::string_view name = file_name_of(path);
    const auto take = [&](std::string_view token, bool in_name) {
        const auto offset = static_cast<std::uint32_t>(scratch_.text.size());
        for (char c : token)
            scratch_.text.push_back(fold_byte(c));
        const std::string_view folded(scratch_.text.data() + offset, token.size());
        for (auto& [o, n] : scratch_.spans)
            if (std::string_view(scratch_.text.data() + o, n & ~kNameBit) == folded) {
                if (in_name)
                    n |= kNameBit;
                scratch_.text.resize(offset);
                return true;
            }
        scratch_.spans.emplace_back(offset, static_cast<std::uint32_t>(token.size()) | (in_name ? kNameBit : 0));
        return true;
    };
    // The path's directories, its file name, then the description.
    for_each_search_token(path.substr(0, path.size() - name.size()), [&](std::string_view t) { return take(t, false); });
    for_each_search_token(name, [&](std::string_view t) { return take(t, true); });
    for_each_search_token(description, [&](std::string_view t) { return take(t, false); });
}

SearchIndex::Id SearchIndex::add(const void* doc, std::string_view path, std::string_view description)
{
    const auto id = static_cast<Id>(docs_.size());
    docs_.push_back(doc);
    ++live_;
    gather(path, description);
    for (const auto& [offset, n] : scratch_.spans) {
        const std::string_view text(scratch_.text.data() + offset, n & ~kNameBit);
        Token* t = by_text_.find(text);
        if (!t) {
            auto fresh = std::make_unique<Token>();
            fresh->text.assign(text);
            t = fresh.release();
            by_text_.insert(t);
            ordered_.insert({head_of(t->text), t});
        } else if (t->live == 0) {
            --empty_;  // a token seen before, back in use
        }
        ++t->live;
        const bool named = (n & kNameBit) != 0;
        // A bitmap grows to the newest id: a token that was dense among few ids and is rare
        // among many becomes a list before it grows.
        if (t->dense() && t->live * kSparse < docs_.size())
            sparsify(*t);
        if (t->dense()) {
            const std::size_t w = word_of(id);
            if (w + 2 > t->bits.size()) {
                if (w + 2 > t->bits.capacity())  // a quarter more, as the lists
                    t->bits.reserve(std::max(w + 2, t->bits.capacity() + t->bits.capacity() / 4));
                t->bits.resize(w + 2, 0);
            }
            set_bits(&t->bits[w], id, named);
        } else {
            append(t->postings, id << 1 | (named ? 1 : 0));
            if (t->live * kDense > docs_.size() && t->live >= 64)
                densify(*t);
        }
    }
    return id;
}

void SearchIndex::remove(Id id, std::string_view path, std::string_view description)
{
    if (id >= docs_.size() || !docs_[id])
        return;
    docs_[id] = nullptr;
    --live_;
    gather(path, description);
    for (const auto& [offset, n] : scratch_.spans) {
        Token* t = by_text_.find(std::string_view(scratch_.text.data() + offset, n & ~kNameBit));
        if (!t)
            continue;
        --t->live;
        if (t->dense()) {
            const std::size_t w = word_of(id);
            t->bits[w] &= ~bit_of(id);
            t->bits[w + 1] &= ~bit_of(id);
            if (t->live * kSparse < docs_.size())
                sparsify(*t);
        } else if (++t->dead * 2 > t->postings.size()) {
            compact(*t);
        }
        if (t->live == 0)
            ++empty_;
    }
    // A token whose last posting went stays (a rare word often comes back) until the
    // empty ones are as many as the others: then they all go, at an amortised constant cost.
    if (empty_ > 1024 && empty_ * 2 > by_text_.size())
        drop_empty();
}

void SearchIndex::drop_empty()
{
    std::vector<Token*> empty;
    by_text_.for_each([&](Token* t) {
        if (t->live == 0)
            empty.push_back(t);
    });
    for (Token* t : empty) {
        if (const auto it = ordered_.find(Probe{head_of(t->text), t->text}); it != ordered_.end())
            ordered_.erase(it);
        by_text_.erase(t->text);
        delete t;
    }
    empty_ = 0;
}

void SearchIndex::compact(Token& t)
{
    t.postings.erase(std::remove_if(t.postings.begin(), t.postings.end(), [&](Id p) { return !docs_[p >> 1]; }),
                     t.postings.end());
    if (t.postings.capacity() > 8)  // a few postings' slack costs less than a reallocation
        t.postings.shrink_to_fit();
    t.dead = 0;
}

void SearchIndex::densify(Token& t)
{
    t.bits.assign((docs_.size() + 63) / 64 * 2, 0);
    for (const Id p : t.postings) {
        const Id id = p >> 1;
        if (!docs_[id])
            continue;  // dead
        set_bits(&t.bits[word_of(id)], id, (p & 1) != 0);
    }
    std::vector<Id>().swap(t.postings);
    t.dead = 0;
}

void SearchIndex::sparsify(Token& t)
{
    std::vector<Id> postings;
    postings.reserve(t.live);
    for (std::size_t w = 0; w + 1 < t.bits.size(); w += 2)
        for (std::uint64_t any = t.bits[w]; any != 0; any &= any - 1) {
            const auto b = static_cast<unsigned>(__builtin_ctzll(any));
            const auto id = static_cast<Id>(w / 2 * 64 + b);
            postings.push_back(id << 1 | static_cast<Id>(t.bits[w + 1] >> b & 1));
        }
    t.postings.swap(postings);
    std::vector<std::uint64_t>().swap(t.bits);
    t.dead = 0;
}

std::size_t SearchIndex::dense_tokens() const
{
    std::size_t n = 0;
    by_text_.for_each([&](const Token* t) { n += t->dense(); });
    return n;
}

std::size_t SearchIndex::list_bytes() const
{
    std::size_t n = docs_.capacity() * sizeof(const void*);
    by_text_.for_each([&](const Token* t) {
        n += t->postings.capacity() * sizeof(Id) + t->bits.capacity() * sizeof(std::uint64_t);
    });
    return n;
}

std::size_t SearchIndex::candidates(const SearchQuery& q, std::size_t budget,
                                    const std::function<Want(const Candidate&)>& visit) const
{
    // Whether a token starts with `term` (whose head is `th`): by the key's eight bytes when
    // the term fits in them, so the token itself is not read.
    const auto has_prefix = [](const Ordered& o, std::string_view term, std::uint64_t th) {
        if (term.size() <= 8) {
            const std::uint64_t mask = term.size() == 8 ? ~std::uint64_t{0} : ~(~std::uint64_t{0} >> (8 * term.size()));
            return (o.head & mask) == th;
        }
        return o.head == th && o.token->text.compare(0, term.size(), term) == 0;
    };
    // The tokens `term` is a prefix of, into `out`, and their postings: at most
    // kMaxRangeLists of them, else SIZE_MAX (too wide for a walk or a check in the lists).
    const auto prefix_range = [&](const std::string& term, std::vector<const Token*>& out) {
        out.clear();
        std::size_t weight = 0;
        const std::uint64_t th = head_of(term);
        for (auto it = ordered_.lower_bound(Probe{th, term}); it != ordered_.end() && has_prefix(*it, term, th); ++it) {
            if (out.size() == kMaxRangeLists)
                return SIZE_MAX;
            out.push_back(it->token);
            weight += it->token->weight();
        }
        return weight;
    };
    // The rarest include term: the fewest postings over the tokens its prefix covers.
    std::vector<const Token*> lists, best;
    std::size_t best_count = SIZE_MAX;
    std::size_t best_term = 0;  // in q.include
    bool scan = true;
    for (std::size_t i = 0; i < q.include.size(); ++i) {
        const std::size_t count = prefix_range(q.include[i], lists);  // SIZE_MAX: not a starting point
        if (count < best_count) {
            best_count = count;
            best_term = i;
            best.swap(lists);
            scan = false;
        }
    }
    std::size_t examined = 0;
    if (scan) {  // every include term is too wide: the id table, newest first
        for (std::size_t id = docs_.size(); id-- > 0 && examined < budget;) {
            ++examined;
            if (docs_[id] && visit({docs_[id], false, true, false}) == Want::stop)
                break;
        }
        return examined;
    }
    // The other terms, when each is narrow enough to check in its lists.
    struct Check {
        const std::vector<Id>* list;
        std::size_t pos;             // postings at or after it are newer than every candidate to come
        const std::uint64_t* bits;  // a dense token's bitmap (its words), else null
        std::size_t words;
    };
    struct Term {
        std::size_t first, end;  // its lists in `checks`
        bool exclude;
        std::size_t window;  // a wide term's window in `windows`, else SIZE_MAX
        std::size_t weight;  // its postings
    };
    // A term over more than kMaxCheckLists lists (after the merge below) is checked in a
    // window: which of the kWindow ids below the window's top are in any of its lists (and
    // in which file names), filled from its lists when the walk first reaches it. Its
    // cursors only go back, so filling costs at most the term's postings over the walk.
    struct Window {
        Id lo = 0;
        bool filled = false;
        std::uint64_t any[kWindow / 64], named[kWindow / 64];
    };
    std::vector<Check> checks;
    std::vector<Term> terms;
    std::vector<Window> windows;
    bool checkable = true;
    // Several small lists as one, in id order. A prefix often covers one common token and
    // a few rare ones (pco: pcod and seven others of 12 to 59 postings); each list costs a
    // search for every candidate, so the rare ones are merged into one list first, when
    // they hold at most what is left of kMergeCap postings for the whole query.
    // At most one merge for the walk and one for each other term: reserved, so that the
    // lists never move once their address is taken.
    std::vector<std::vector<Id>> merged;
    merged.reserve(q.include.size() + q.exclude.size());
    std::size_t merge_left = kMergeCap;
    // The sparse lists of `tokens`: every one of them, or the largest and the others merged.
    const auto sparse_lists = [&](const std::vector<const Token*>& tokens, std::vector<const std::vector<Id>*>& out) {
        const Token* largest = nullptr;
        std::size_t total = 0, n = 0;
        for (const Token* t : tokens)
            if (!t->dense()) {
                ++n;
                total += t->postings.size();
                if (!largest || t->postings.size() > largest->postings.size())
                    largest = t;
            }
        const std::size_t rest = largest ? total - largest->postings.size() : 0;
        if (n <= 2 || rest > merge_left || merged.size() == merged.capacity()) {
            for (const Token* t : tokens)
                if (!t->dense())
                    out.push_back(&t->postings);
            return;
        }
        merge_left -= rest;
        std::vector<Id>& m = merged.emplace_back();
        m.reserve(rest);
        for (const Token* t : tokens)
            if (!t->dense() && t != largest)
                m.insert(m.end(), t->postings.begin(), t->postings.end());
        std::sort(m.begin(), m.end());
        out.push_back(&largest->postings);
        out.push_back(&m);
    };
    // The walk's own lists first: every candidate passes through them.
    std::vector<const std::vector<Id>*> walk;
    const bool walk_sparse = std::none_of(best.begin(), best.end(), [](const Token* t) { return t->dense(); });
    sparse_lists(best, walk);
    std::vector<const std::vector<Id>*> sparse;
    const auto add_term = [&](const std::string& term, bool exclude) {
        const std::size_t weight = prefix_range(term, lists);
        if (weight == SIZE_MAX) {
            checkable = false;
            return;
        }
        const std::size_t first = checks.size();
        for (const Token* t : lists)
            if (t->dense())
                checks.push_back({nullptr, 0, t->bits.data(), t->bits.size()});
        sparse.clear();
        sparse_lists(lists, sparse);
        for (const std::vector<Id>* v : sparse)
            checks.push_back({v, v->size(), nullptr, 0});
        std::size_t window = SIZE_MAX;
        if (checks.size() - first > kMaxCheckLists) {
            window = windows.size();
            windows.emplace_back();
        }
        terms.push_back({first, checks.size(), exclude, window, weight});
    };
    for (std::size_t i = 0; i < q.include.size() && checkable; ++i)
        if (i != best_term)  // the rarest term is the walk itself
            add_term(q.include[i], false);
    for (const std::string& term : q.exclude) {
        if (!checkable)
            break;
        add_term(term, true);
    }
    // The order of the checks: the rarest include term first, as it turns away the most
    // candidates, then the commonest exclusion. The result does not depend on it.
    std::sort(terms.begin(), terms.end(), [](const Term& a, const Term& b) {
        if (a.exclude != b.exclude)
            return !a.exclude;
        return a.exclude ? a.weight > b.weight : a.weight < b.weight;
    });
    // Is `id` in this list? Looks back from where the previous (newer) search stopped.
    // It and offer() below are forced inline: the compiler kept them as calls, and
    // inlining them lowered the p99 (docs/PERFORMANCE.md, Search).
    const auto find = [](Check& c, Id id, bool& named) __attribute__((always_inline)) {
        if (c.bits) {  // dense: one word pair
            const std::size_t w = word_of(id);
            if (w >= c.words || (c.bits[w] & bit_of(id)) == 0)
                return false;
            named = named || (c.bits[w + 1] & bit_of(id)) != 0;
            return true;
        }
        const Id* v = c.list->data();
        const Id key = id << 1 | 1;  // a posting above it is of a newer document
        std::size_t hi = c.pos;
        // The next candidate is usually a few postings back. How many of the eight before
        // the cursor are newer is counted without a branch: a loop stepping back one at a
        // time mispredicted its exit at nearly every candidate, which was most of the
        // check's time. Further back, galloping.
        if (hi >= 8) {
            std::size_t newer = 0;
            for (std::size_t k = 1; k <= 8; ++k)
                newer += v[hi - k] > key;
            hi -= newer;
        } else {
            while (hi > 0 && v[hi - 1] > key)
                --hi;
        }
        if (hi > 0 && v[hi - 1] > key) {
            std::size_t step = 16;
            std::size_t lo = hi > step ? hi - step : 0;
            while (lo > 0 && v[lo] > key) {  // gallop: find lo with v[lo] <= key
                hi = lo;
                step *= 2;
                lo = hi > step ? hi - step : 0;
            }
            // v[lo] <= key or lo == 0; v[hi - 1] > key: the last posting <= key is in [lo, hi)
            std::size_t n = hi - lo;
            const Id* base = v + lo;
            while (n > 1) {  // branch-free: base[0] stays the last candidate position <= key
                const std::size_t half = n / 2;
                base = base[half] <= key ? base + half : base;
                n -= half;
            }
            hi = (base[0] <= key) ? static_cast<std::size_t>(base - v) + 1 : static_cast<std::size_t>(base - v);
        }
        c.pos = hi;
        if (hi > 0 && (v[hi - 1] >> 1) == id) {
            named = named || (v[hi - 1] & 1) != 0;
            // Each list is searched once per candidate, and the next candidate is older. A
            // merged list may hold two postings of the document (two of its tokens): the key
            // puts the cursor past both, and the later one is named if either is.
            return true;
        }
        return false;
    };
    // Fills the window of a wide term that holds `id`.
    const auto fill = [&](const Term& t, Window& w, Id id) {
        w.lo = id & ~(kWindow - 1);
        w.filled = true;
        std::fill(std::begin(w.any), std::end(w.any), 0);
        std::fill(std::begin(w.named), std::end(w.named), 0);
        bool unused = false;
        for (std::size_t i = t.first; i < t.end; ++i) {
            Check& c = checks[i];
            if (c.bits) {  // dense: the window's words, as they are
                for (std::size_t k = 0, at = word_of(w.lo); k < kWindow / 64 && at < c.words; ++k, at += 2) {
                    w.any[k] |= c.bits[at];
                    w.named[k] |= c.bits[at + 1];
                }
                continue;
            }
            find(c, w.lo + (kWindow - 1), unused);  // past the postings newer than the window
            const Id* v = c.list->data();
            for (; c.pos > 0 && (v[c.pos - 1] >> 1) >= w.lo; --c.pos) {
                const Id bit = (v[c.pos - 1] >> 1) - w.lo;
                w.any[bit / 64] |= std::uint64_t{1} << (bit % 64);
                w.named[bit / 64] |= std::uint64_t{v[c.pos - 1] & 1} << (bit % 64);
            }
        }
    };
    Want want = Want::all;
    // Candidates that passed the checks wait in two short queues before the visitor sees
    // them, so that the memory they need is asked for ahead and fetched in parallel: in the
    // first, their id table entry; in the second, the document. The visitor sees them in
    // the same order; its Want applies to the walk a few candidates late, which it allows
    // for (it is given every candidate the walk found under the earlier Want).
    struct Pending {
        Id id;
        bool exact, named, decided;
        const void* doc;
    };
    Pending ids[kAhead], docs[kAhead];
    std::size_t ids_n = 0, ids_head = 0, docs_n = 0, docs_head = 0;
    // Once the visitor wants file-name matches only, it holds enough others to fill its
    // answer: the walk for better-placed hits gets a quarter of the budget from there.
    bool narrowed = false;
    const auto deliver = [&](const Pending& p) {
        want = visit({p.doc, p.exact, p.named, p.decided});
        if (want == Want::named && !narrowed) {
            narrowed = true;
            if (budget - examined > budget / kNamedShare)  // (examined < budget here)
                budget = examined + budget / kNamedShare;
        }
        return want != Want::stop;
    };
    // push() and to_docs() each pass a candidate through one queue, written out twice:
    // a shared queue type measured 5-10% fewer queries per second here.
    const auto to_docs = [&](Pending p) {
        p.doc = docs_[p.id];
        if (!p.doc)
            return true;  // removed
        __builtin_prefetch(p.doc);  // its first 128 bytes (a publication is 120)
        __builtin_prefetch(static_cast<const char*>(p.doc) + 64);
        if (docs_n == kAhead) {
            const Pending out = docs[docs_head];
            docs[docs_head] = p;
            docs_head = (docs_head + 1) % kAhead;
            return deliver(out);
        }
        docs[(docs_head + docs_n++) % kAhead] = p;
        return true;
    };
    const auto push = [&](Id id, bool named, bool decided) {
        __builtin_prefetch(&docs_[id]);
        const Pending p{id, true, named, decided, nullptr};
        if (ids_n == kAhead) {
            const Pending out = ids[ids_head];
            ids[ids_head] = p;
            ids_head = (ids_head + 1) % kAhead;
            return to_docs(out);
        }
        ids[(ids_head + ids_n++) % kAhead] = p;
        return true;
    };
    // The candidates still queued, in order, when the walk ends (not when it was stopped).
    const auto drain = [&] {
        for (; ids_n > 0; --ids_n, ids_head = (ids_head + 1) % kAhead)
            if (!to_docs(ids[ids_head]))
                return;
        for (; docs_n > 0; --docs_n, docs_head = (docs_head + 1) % kAhead)
            if (!deliver(docs[docs_head]))
                return;
    };
    // The candidate `id` (whose rarest term is named or not): skipped when the checks say
    // it does not match, else queued for the visitor.
    // `from`: the terms before it were checked already.
    const auto offer = [&](Id id, bool named, std::size_t from = 0) __attribute__((always_inline)) {
        if (want == Want::named && !named)
            return true;  // the rarest term is not in its file name
        if (!checkable)
            return push(id, named, false);
        for (std::size_t ti = from; ti < terms.size(); ++ti) {
            const Term& t = terms[ti];
            bool in = false, in_name = false;
            if (t.window != SIZE_MAX) {
                Window& w = windows[t.window];
                if (!w.filled || id < w.lo)
                    fill(t, w, id);
                const Id bit = id - w.lo;
                in = (w.any[bit / 64] >> (bit % 64) & 1) != 0;
                in_name = (w.named[bit / 64] >> (bit % 64) & 1) != 0;
            } else {
                for (std::size_t i = t.first; i < t.end; ++i)
                    in = find(checks[i], id, in_name) || in;
            }
            if (t.exclude ? in : !in)
                return true;  // not a match: the publication is never read
            if (!t.exclude)
                named = named && in_name;
            if (want == Want::named && !named)
                return true;
        }
        return push(id, named, true);
    };
    // A walk that holds a dense token goes a block of 64 ids at a time, newest first: each
    // term gives the block's word of the ids in any of its lists (a dense token's word as it
    // is, a list's postings in the block), and the words are combined before any
    // candidate is looked at. Most of the walk's candidates are then turned away 64 at a
    // time. Not for a term checked in a window, nor a walk over more than kMaxCheckLists
    // lists: a block would visit each of them.
    std::vector<Check> walked;  // the walk's dense tokens and its lists (the rare ones perhaps merged)
    for (const Token* t : best)
        if (t->dense())
            walked.push_back({nullptr, 0, t->bits.data(), t->bits.size()});
    for (const std::vector<Id>* v : walk)
        walked.push_back({v, v->size(), nullptr, 0});
    const bool by_blocks = !walk_sparse && checkable && walked.size() <= kMaxCheckLists &&
                           std::none_of(terms.begin(), terms.end(), [](const Term& t) { return t.window != SIZE_MAX; });
    if (by_blocks) {
        // ORs the block from `lo` into `any` and `named`; the list's cursor passes over
        // the postings of newer blocks, left by a block in which the term was not needed.
        const auto block = [](Check& c, Id lo, std::uint64_t& any, std::uint64_t& named) {
            if (c.bits) {
                if (word_of(lo) < c.words) {
                    any |= c.bits[word_of(lo)];
                    named |= c.bits[word_of(lo) + 1];
                }
                return;
            }
            const Id* v = c.list->data();
            while (c.pos > 0 && std::uint64_t{v[c.pos - 1] >> 1} >= std::uint64_t{lo} + 64)
                --c.pos;
            for (; c.pos > 0 && (v[c.pos - 1] >> 1) >= lo; --c.pos) {
                const Id b = (v[c.pos - 1] >> 1) - lo;
                any |= std::uint64_t{1} << b;
                named |= std::uint64_t{v[c.pos - 1] & 1} << b;
            }
        };
        // From the block of the walk's newest id: a dense token's bitmap ends at the last id
        // it was given, and the empty blocks above it would count against the budget.
        std::size_t top = 0;
        for (const Check& c : walked)
            top = std::max(top, c.bits ? c.words / 2 : c.pos > 0 ? std::size_t{(*c.list)[c.pos - 1] >> 1} / 64 + 1 : 0);
        for (std::size_t k = top; k-- > 0 && examined < budget;) {
            const auto lo = static_cast<Id>(k * 64);
            std::uint64_t any = 0, named = 0;
            for (Check& c : walked)
                block(c, lo, any, named);
            if (any == 0) {
                ++examined;  // an empty word, as the bitmap walk counts it
                continue;
            }
            // The budget, in candidates: the newest of the block first.
            for (auto n = static_cast<std::size_t>(__builtin_popcountll(any)); n > budget - examined; --n)
                any &= any - 1;
            examined += static_cast<std::size_t>(__builtin_popcountll(any));
            for (const Term& t : terms) {
                if (want == Want::named)
                    any &= named;
                if (any == 0)
                    break;
                std::uint64_t in = 0, in_name = 0;
                for (std::size_t i = t.first; i < t.end; ++i)
                    block(checks[i], lo, in, in_name);
                if (t.exclude) {
                    any &= ~in;
                } else {
                    any &= in;
                    named &= in_name;
                }
            }
            while (any != 0) {
                const auto b = static_cast<unsigned>(63 - __builtin_clzll(any));
                any &= ~(std::uint64_t{1} << b);
                const bool in_name = (named >> b & 1) != 0;
                if (want == Want::named && !in_name)
                    continue;
                if (!push(lo + b, in_name, true))
                    return examined;
            }
        }
        drain();
        return examined;
    }
    // The newest document left in two lists walked side by side (i and j postings left), as
    // a posting: named when any of its postings there is. A merged list may hold an id
    // twice; both are passed.
    const auto next_of_two = [](const std::vector<Id>& a, std::size_t& i, const std::vector<Id>& b, std::size_t& j) {
        const Id id = j == 0 || (i > 0 && a[i - 1] > b[j - 1]) ? a[i - 1] >> 1 : b[j - 1] >> 1;
        Id named = 0;
        for (; i > 0 && (a[i - 1] >> 1) == id; --i)
            named |= a[i - 1] & 1;
        for (; j > 0 && (b[j - 1] >> 1) == id; --j)
            named |= b[j - 1] & 1;
        return id << 1 | named;
    };
    // A walk of one or two lists whose first term to check is in lists not much longer than
    // the walk (and perhaps in dense tokens) goes 64 candidates at a time: they are taken in
    // id order, merged with each of the term's lists (intersect()) and looked up in its
    // bitmaps, and only those in the term reach offer(), which checks the other terms. It
    // replaces a search per candidate and list, and most of the work per candidate: at
    // 2,000,000 publications the slowest such queries took half the time. The budget still
    // counts each candidate, and the visitor sees the same ones in the same order.
    if (walk_sparse && !walk.empty() && walk.size() <= 2 && checkable && !terms.empty() && !terms[0].exclude &&
        terms[0].window == SIZE_MAX) {
        std::size_t term_postings = 0, walk_postings = 0;
        for (std::size_t k = terms[0].first; k < terms[0].end; ++k)
            term_postings += checks[k].bits ? 0 : checks[k].list->size();
        for (const std::vector<Id>* v : walk)
            walk_postings += v->size();
        if (term_postings <= kMergeRatio * walk_postings) {
            const std::vector<Id>& a = *walk[0];
            static const std::vector<Id> none;
            const std::vector<Id>& b = walk.size() == 2 ? *walk[1] : none;
            std::size_t i = a.size(), j = b.size();
            Id buf[64];
            while ((i > 0 || j > 0) && examined < budget) {
                // The next candidates, at most 64 and what the budget allows, oldest first.
                const std::size_t cap = std::min<std::size_t>(64, budget - examined);
                const Id* w;
                std::size_t n;
                // One list (or one left), or the next `cap` postings of the first all newer
                // than the second's next (the second is often a few rare tokens merged):
                // the first's postings as they are. It holds one posting per id.
                if (j == 0 || (i >= cap && (b[j - 1] >> 1) < (a[i - cap] >> 1))) {
                    n = std::min(i, cap);
                    i -= n;
                    w = a.data() + i;
                } else {
                    std::size_t k = 64;
                    while (64 - k < cap && (i > 0 || j > 0)) {
                        buf[--k] = next_of_two(a, i, b, j);
                    }
                    n = 64 - k;
                    w = buf + k;
                }
                // The bitmap words the next chunk will need from the first term's dense
                // tokens (for its ids in the walk's first list, one in two: they are about
                // a hundred ids apart, four word pairs to a cache line) are asked for now,
                // so that they arrive while this chunk is checked: a query that walks
                // thousands of candidates against a cold bitmap waited on each line.
                for (std::size_t k = terms[0].first; k < terms[0].end; ++k)
                    if (checks[k].bits)
                        for (std::size_t e = 1; e <= std::min<std::size_t>(i, 64); e += 2)
                            if (word_of(a[i - e] >> 1) < checks[k].words)
                                __builtin_prefetch(checks[k].bits + word_of(a[i - e] >> 1));
                // And the walk's next postings.
                for (std::size_t o = 16; o <= std::min<std::size_t>(i, 64); o += 16)
                    __builtin_prefetch(a.data() + i - o);
                for (std::size_t o = 16; o <= std::min<std::size_t>(j, 64); o += 16)
                    __builtin_prefetch(b.data() + j - o);
                std::uint64_t in = 0, in_name = 0;
                bool unused = false;
                for (std::size_t k = terms[0].first; k < terms[0].end; ++k) {
                    Check& c = checks[k];
                    if (c.bits) {
                        for (std::size_t e = 0; e < n; ++e) {
                            const Id id = w[e] >> 1;
                            if (word_of(id) < c.words) {
                                in |= (c.bits[word_of(id)] >> (id % 64) & 1) << e;
                                in_name |= (c.bits[word_of(id) + 1] >> (id % 64) & 1) << e;
                            }
                        }
                        continue;
                    }
                    const std::size_t before = c.pos;
                    if ((w[0] >> 1) > 0)
                        find(c, (w[0] >> 1) - 1, unused);  // the cursor to the chunk's oldest id
                    else
                        c.pos = 0;
                    intersect(w, n, c.list->data() + c.pos, c.list->size() - c.pos, in, in_name);
                    // The next chunk reads about as many postings below the cursor: asked for now.
                    for (std::size_t o = 16; o <= std::min<std::size_t>(before - c.pos, 1024) && o <= c.pos; o += 16)
                        __builtin_prefetch(c.list->data() + c.pos - o);
                }
                const std::size_t base = examined;
                for (; in != 0; in &= ~(std::uint64_t{1} << (63 - __builtin_clzll(in)))) {
                    const auto e = static_cast<std::size_t>(63 - __builtin_clzll(in));
                    if (base + (n - 1 - e) >= budget)  // the budget, lowered by the visitor meanwhile
                        break;
                    examined = base + (n - e);  // as if one at a time: the visitor may lower the budget from it
                    if (!offer(w[e] >> 1, (w[e] & 1) != 0 && (in_name >> e & 1) != 0, 1))
                        return examined;
                }
                examined = std::min(base + n, budget);
            }
            drain();
            return examined;
        }
    }
    if (walk_sparse && walk.size() == 1) {  // one list alone, no merge
        const std::vector<Id>& p = *walk[0];
        for (std::size_t i = p.size(); i-- > 0 && examined < budget;) {
            ++examined;
            if (!offer(p[i] >> 1, (p[i] & 1) != 0))
                return examined;
        }
        drain();
        return examined;
    }
    if (walk_sparse && walk.size() == 2) {  // two lists (one of them perhaps merged), newest first
        const std::vector<Id>& a = *walk[0];
        const std::vector<Id>& b = *walk[1];
        std::size_t i = a.size(), j = b.size();
        while ((i > 0 || j > 0) && examined < budget) {
            const Id p = next_of_two(a, i, b, j);
            ++examined;
            if (!offer(p >> 1, (p & 1) != 0))
                return examined;
        }
        drain();
        return examined;
    }
    // Merge the walk's dense tokens and lists newest first; a document in two of them, or
    // twice in the merged list, is given once, named when any of its tokens in the range is
    // in its file name. A dense token's cursor looks down its bitmap; each word of it passed
    // over empty counts as a posting examined, so that the budget bounds that too.
    struct Cursor {
        const Check* from;  // one of `walked`
        std::size_t next;   // sparse: one past the next posting; dense: the ids below it are left
        Id head;            // the posting to give next
    };
    const auto advance = [&examined](Cursor& c) {
        const Check& f = *c.from;
        if (!f.bits) {
            if (c.next == 0)
                return false;
            c.head = (*f.list)[--c.next];
            return true;
        }
        while (c.next > 0) {
            const std::size_t w = (c.next - 1) / 64 * 2;
            const unsigned top = static_cast<unsigned>((c.next - 1) % 64);  // bits 0 to top are left
            const std::uint64_t any = f.bits[w] & (top == 63 ? ~std::uint64_t{0} : (std::uint64_t{2} << top) - 1);
            if (any != 0) {
                const auto b = static_cast<unsigned>(63 - __builtin_clzll(any));
                const auto id = static_cast<Id>(w / 2 * 64 + b);
                c.head = id << 1 | static_cast<Id>(f.bits[w + 1] >> b & 1);
                c.next = id;
                return true;
            }
            ++examined;
            c.next = w / 2 * 64;
        }
        return false;
    };
    const auto newer = [](const Cursor& a, const Cursor& b) { return a.head < b.head; };
    std::priority_queue<Cursor, std::vector<Cursor>, decltype(newer)> heap(newer);
    for (const Check& w : walked) {
        Cursor c{&w, w.bits ? w.words / 2 * 64 : w.list->size(), 0};
        if (advance(c))
            heap.push(c);
    }
    while (!heap.empty() && examined < budget) {
        Cursor c = heap.top();
        heap.pop();
        const Id id = c.head >> 1;
        bool named = (c.head & 1) != 0;
        if (advance(c))
            heap.push(c);
        while (!heap.empty() && (heap.top().head >> 1) == id) {
            Cursor d = heap.top();
            heap.pop();
            named = named || (d.head & 1) != 0;
            if (advance(d))
                heap.push(d);
        }
        ++examined;
        if (!offer(id, named))
            return examined;
    }
    drain();
    return examined;
}

}  // namespace peerdex
