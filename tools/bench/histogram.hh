// Latency histogram with bounded relative error (log-linear buckets, like
// HdrHistogram): 64 buckets per power of two, so a quantile is within 1/64 above the truth.
#pragma once

#include <array>
#include <cstdint>

namespace peerdex {

class Histogram {
public:
    void record(std::uint64_t us)
    {
        ++counts_[index(us)];
        ++total_;
        if (us > max_)
            max_ = us;
    }
    std::uint64_t total() const { return total_; }
    std::uint64_t max() const { return max_; }
    // The value below which a fraction q of the samples fall (upper edge of its bucket).
    std::uint64_t quantile(double q) const
    {
        if (total_ == 0)
            return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return upper(i);
        }
        return max_;
    }
    void merge(const Histogram& o)
    {
        for (std::size_t i = 0; i < counts_.size(); ++i)
            counts_[i] += o.counts_[i];
        total_ += o.total_;
        if (o.max_ > max_)
            max_ = o.max_;
    }

private:
    static constexpr int kSubBits = 7;
    static constexpr std::size_t kSub = 1u << kSubBits;

    // Below kSub: exact. Above: the top kSubBits bits of the value (the mantissa, in
    // [kSub/2, kSub)) and the shift e that dropped the rest.
    static std::size_t index(std::uint64_t v)
    {
        if (v < kSub)
            return static_cast<std::size_t>(v);
        const int e = 63 - __builtin_clzll(v) - (kSubBits - 1);
        return static_cast<std::size_t>(e) * kSub + static_cast<std::size_t>(v >> e);
    }
    static std::uint64_t upper(std::size_t i)
    {
        const std::size_t e = i / kSub;
        return ((std::uint64_t{i % kSub} + 1) << e) - 1;
    }

    std::array<std::uint64_t, 60 * kSub> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace peerdex
