#include "search_index.hh"

#include <algorithm>
#include <queue>

namespace peerdex {

std::vector<std::string> SearchIndex::distinct_tokens(std::string_view path, std::string_view description)
{
    std::vector<std::string> out;
    for (std::string_view text : {path, description})
        for (std::string_view t : search_tokens(text))
            out.push_back(fold(t));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

SearchIndex::Id SearchIndex::add(const void* doc, std::string_view path, std::string_view description)
{
    const auto id = static_cast<Id>(docs_.size());
    docs_.push_back(doc);
    ++live_;
    for (std::string& token : distinct_tokens(path, description))
        dict_[std::move(token)].ids.push_back(id);
    return id;
}

void SearchIndex::remove(Id id, std::string_view path, std::string_view description)
{
    if (id >= docs_.size() || !docs_[id])
        return;
    docs_[id] = nullptr;
    --live_;
    for (const std::string& token : distinct_tokens(path, description)) {
        auto it = dict_.find(token);
        if (it == dict_.end())
            continue;
        List& list = it->second;
        if (++list.dead * 2 > list.ids.size())
            compact(list);
        if (list.ids.empty())
            dict_.erase(it);
    }
}

void SearchIndex::compact(List& list)
{
    list.ids.erase(std::remove_if(list.ids.begin(), list.ids.end(), [&](Id id) { return !docs_[id]; }),
                   list.ids.end());
    list.ids.shrink_to_fit();
    list.dead = 0;
}

std::size_t SearchIndex::list_bytes() const
{
    std::size_t n = docs_.capacity() * sizeof(const void*);
    for (const auto& [token, list] : dict_)
        n += list.ids.capacity() * sizeof(Id);
    return n;
}

std::size_t SearchIndex::candidates(const SearchQuery& q, std::size_t budget,
                                    const std::function<bool(const void*)>& visit) const
{
    // The rarest include term: the fewest ids over the tokens its prefix covers.
    std::vector<const List*> lists, best_lists;
    std::size_t best_count = SIZE_MAX;
    bool scan = true;
    for (const std::string& term : q.include) {
        lists.clear();
        std::size_t count = 0;
        for (auto it = dict_.lower_bound(term); it != dict_.end() && it->first.compare(0, term.size(), term) == 0;
             ++it) {
            if (lists.size() == kMaxRangeLists) {
                count = SIZE_MAX;  // too wide to merge: not a starting point
                break;
            }
            lists.push_back(&it->second);
            count += it->second.ids.size();
        }
        if (count < best_count) {
            best_count = count;
            best_lists = lists;
            scan = false;
        }
    }
    std::size_t examined = 0;
    if (scan) {  // every include term is too wide: the id table, newest first
        for (std::size_t id = docs_.size(); id-- > 0 && examined < budget;) {
            ++examined;
            if (docs_[id] && !visit(docs_[id]))
                break;
        }
        return examined;
    }
    // Merge the lists of the range newest first; an id in two of them is given once.
    struct Cursor {
        const List* list;
        std::size_t next;  // one past the next id to give
    };
    const auto newer = [](const Cursor& a, const Cursor& b) { return a.list->ids[a.next - 1] < b.list->ids[b.next - 1]; };
    std::priority_queue<Cursor, std::vector<Cursor>, decltype(newer)> heap(newer);
    for (const List* l : best_lists)
        if (!l->ids.empty())
            heap.push({l, l->ids.size()});
    Id last = 0;
    bool any = false;
    while (!heap.empty() && examined < budget) {
        Cursor c = heap.top();
        heap.pop();
        const Id id = c.list->ids[--c.next];
        if (c.next > 0)
            heap.push(c);
        if (any && id == last)
            continue;
        any = true;
        last = id;
        ++examined;
        if (docs_[id] && !visit(docs_[id]))
            break;
    }
    return examined;
}

}  // namespace peerdex
