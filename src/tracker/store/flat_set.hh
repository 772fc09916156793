// An open-addressing hash set of pointers whose key is read from the element itself
// (a user's name): linear probing, backward-shift deletion, no node per element. A lookup
// touches one slot array entry and the element, where std::unordered_map walks a bucket,
// a node before the chain and the node itself: at a million users that is most of the
// cache misses of loading a state file and of every request naming a user. The set does
// not own its elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace peerdex {

// KeyOf: `Key operator()(const T*)`; Hash: `std::size_t operator()(const Key&)`.
template <class T, class Key, class KeyOf, class Hash>
class FlatSet {
public:
    std::size_t size() const { return size_; }

    T* find(const Key& key) const
    {
        if (size_ == 0)
            return nullptr;
        const std::size_t h = Hash()(key);
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (!s.value)
                return nullptr;
            if (s.hash == h && KeyOf()(s.value) == key)
                return s.value;
        }
    }

    // Adds `value` unless an element with its key is there: that element and false, or
    // `value` and true.
    std::pair<T*, bool> insert(T* value)
    {
        if ((size_ + 1) * 4 > slots_.size() * 3)
            rehash(slots_.empty() ? 16 : slots_.size() * 2);
        const Key key = KeyOf()(value);
        const std::size_t h = Hash()(key);
        std::size_t i = h & mask_;
        for (; slots_[i].value; i = (i + 1) & mask_)
            if (slots_[i].hash == h && KeyOf()(slots_[i].value) == key)
                return {slots_[i].value, false};
        slots_[i] = {h, value};
        ++size_;
        return {value, true};
    }

    // Removes the element with this key; false when there is none.
    bool erase(const Key& key)
    {
        if (size_ == 0)
            return false;
        const std::size_t h = Hash()(key);
        std::size_t i = h & mask_;
        for (;; i = (i + 1) & mask_) {
            if (!slots_[i].value)
                return false;
            if (slots_[i].hash == h && KeyOf()(slots_[i].value) == key)
                break;
        }
        // Backward shift: pull later entries of the run into the hole when their home slot
        // is not between the hole and them, so that no lookup meets an empty slot early.
        for (std::size_t j = (i + 1) & mask_; slots_[j].value; j = (j + 1) & mask_) {
            const std::size_t home = slots_[j].hash & mask_;
            if (((j - home) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = Slot();
        --size_;
        return true;
    }

    // Room for n elements without growing.
    void reserve(std::size_t n)
    {
        std::size_t cap = 16;
        while (cap * 3 < n * 4)
            cap *= 2;
        if (cap > slots_.size())
            rehash(cap);
    }

    template <class F>
    void for_each(F f) const
    {
        for (const Slot& s : slots_)
            if (s.value)
                f(s.value);
    }

private:
    struct Slot {
        std::size_t hash = 0;
        T* value = nullptr;  // null: empty
    };

    void rehash(std::size_t cap)
    {
        std::vector<Slot> old(cap);
        old.swap(slots_);
        mask_ = cap - 1;
        for (const Slot& s : old) {
            if (!s.value)
                continue;
            std::size_t i = s.hash & mask_;
            while (slots_[i].value)
                i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace peerdex
