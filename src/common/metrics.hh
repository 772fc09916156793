// Prometheus text exposition (format 0.0.4): counters, gauges and histograms written by
// name, with their HELP and TYPE lines, for the daemons' GET /metrics. Pure: no HTTP here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace peerdex {

// A histogram of durations in seconds over fixed bounds: from 10 µs to 10 s, three steps a
// decade, which covers a tracker reply (µs), a commit (ms) and a stalled turn (s).
class Histogram {
public:
    static constexpr std::size_t kBuckets = 19;
    static const std::array<double, kBuckets> kBounds;  // upper bounds, seconds; +Inf beyond

    void observe_ns(std::uint64_t ns);
    std::uint64_t count() const { return count_; }
    double sum_seconds() const { return static_cast<double>(sum_ns_) / 1e9; }
    // Observations <= kBounds[i] (cumulative, as Prometheus wants them).
    std::uint64_t cumulative(std::size_t i) const;

private:
    std::array<std::uint64_t, kBuckets + 1> counts_{};  // the last is +Inf
    std::uint64_t count_ = 0;
    std::uint64_t sum_ns_ = 0;
};

// One label: its name (a constant) and its value (any bytes; escaped when written).
using MetricLabel = std::pair<std::string_view, std::string_view>;

class MetricsText {
public:
    enum class Type { counter, gauge, histogram };

    // Starts a family: its HELP and TYPE lines. Samples of that family follow.
    void family(std::string_view name, Type type, std::string_view help);
    void sample(std::string_view name, double value, std::initializer_list<MetricLabel> labels = {});
    void sample(std::string_view name, std::uint64_t value, std::initializer_list<MetricLabel> labels = {});
    // The _bucket, _sum and _count samples of one histogram of the current family.
    void histogram(std::string_view name, const Histogram& h, std::initializer_list<MetricLabel> labels = {});

    // family() then one sample without labels: the common case.
    void counter(std::string_view name, std::string_view help, std::uint64_t value);
    void gauge(std::string_view name, std::string_view help, double value);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void labels(std::initializer_list<MetricLabel> labels, std::string_view le = {});
    // One sample line: name, suffix (_bucket, _sum, _count or none), labels, le, value.
    void line(std::string_view name, std::string_view suffix, std::initializer_list<MetricLabel> labels,
              std::string_view le, const std::string& value);
    std::string out_;
};

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);

}  // namespace peerdex
