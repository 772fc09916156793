#include "metrics.hh"

#include <cmath>
#include <cstdio>

namespace peerdex {

const std::array<double, Histogram::kBuckets> Histogram::kBounds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10,
};

void Histogram::observe_ns(std::uint64_t ns)
{
    const double s = static_cast<double>(ns) / 1e9;
    std::size_t i = 0;
    while (i < kBuckets && s > kBounds[i])
        ++i;
    ++counts_[i];
    ++count_;
    sum_ns_ += ns;
}

std::uint64_t Histogram::cumulative(std::size_t i) const
{
    std::uint64_t n = 0;
    for (std::size_t j = 0; j <= i && j < counts_.size(); ++j)
        n += counts_[j];
    return n;
}

std::string escape_label_value(std::string_view v)
{
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {

void append_number(std::string& out, double v)
{
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    out += buf;
}

}  // namespace

void MetricsText::family(std::string_view name, Type type, std::string_view help)
{
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (char c : help) {  // HELP escapes backslash and newline only
        if (c == '\\')
            out_ += "\\\\";
        else if (c == '\n')
            out_ += "\\n";
        else
            out_ += c;
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += type == Type::counter ? " counter\n" : type == Type::gauge ? " gauge\n" : " histogram\n";
}

void MetricsText::labels(std::initializer_list<MetricLabel> list, std::string_view le)
{
    if (list.size() == 0 && le.empty())
        return;
    out_ += '{';
    bool first = true;
    for (const MetricLabel& l : list) {
        if (!first)
            out_ += ',';
        first = false;
        out_ += l.first;
        out_ += "=\"";
        out_ += escape_label_value(l.second);
        out_ += '"';
    }
    if (!le.empty()) {
        if (!first)
            out_ += ',';
        out_ += "le=\"";
        out_ += le;
        out_ += '"';
    }
    out_ += '}';
}

void MetricsText::line(std::string_view name, std::string_view suffix, std::initializer_list<MetricLabel> list,
                       std::string_view le, const std::string& value)
{
    out_ += name;
    out_ += suffix;
    labels(list, le);
    out_ += ' ';
    out_ += value;
    out_ += '\n';
}

void MetricsText::sample(std::string_view name, double value, std::initializer_list<MetricLabel> list)
{
    std::string v;
    append_number(v, value);
    line(name, {}, list, {}, v);
}

void MetricsText::sample(std::string_view name, std::uint64_t value, std::initializer_list<MetricLabel> list)
{
    line(name, {}, list, {}, std::to_string(value));
}

void MetricsText::histogram(std::string_view name, const Histogram& h, std::initializer_list<MetricLabel> list)
{
    for (std::size_t i = 0; i <= Histogram::kBuckets; ++i) {
        std::string le = "+Inf";
        if (i < Histogram::kBuckets) {
            le.clear();
            append_number(le, Histogram::kBounds[i]);
        }
        line(name, "_bucket", list, le, std::to_string(i == Histogram::kBuckets ? h.count() : h.cumulative(i)));
    }
    std::string sum;
    append_number(sum, h.sum_seconds());
    line(name, "_sum", list, {}, sum);
    line(name, "_count", list, {}, std::to_string(h.count()));
}

void MetricsText::counter(std::string_view name, std::string_view help, std::uint64_t value)
{
    family(name, Type::counter, help);
    sample(name, value);
}

void MetricsText::gauge(std::string_view name, std::string_view help, double value)
{
    family(name, Type::gauge, help);
    sample(name, value);
}

}  // namespace peerdex
