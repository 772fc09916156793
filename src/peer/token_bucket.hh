// The upload rate cap (--upload-rate): a token bucket that may go into debt. A sender
// takes the bytes it is about to send while the bucket is not in debt, so a chunk is
// never split; the debt is paid back at the rate before anyone sends again. Over any
// long stretch the bytes sent are the rate times the time, plus at most one burst.
// Pure: time comes in as milliseconds from the caller's clock.
#pragma once

#include <algorithm>
#include <cstdint>

namespace peerdex {

class TokenBucket {
public:
    // `rate` bytes per second (0: unlimited). The bucket holds at most a 50 ms burst.
    void set_rate(std::uint64_t rate, std::uint64_t now_ms)
    {
        rate_ = rate;
        burst_ = std::max<std::int64_t>(static_cast<std::int64_t>(rate / 20), 1);
        tokens_ = std::min(tokens_, burst_);
        last_ms_ = now_ms;
    }
    bool limited() const { return rate_ != 0; }
    std::uint64_t rate() const { return rate_; }
    // The largest chunk one of `senders` taking turns should ask for: 20 ms of the rate,
    // between 1 KiB and 256 KiB, and small enough that every sender gets a turn within
    // 10 s however low the rate (a peer is cut after 30 s without a byte), down to 64 bytes.
    std::uint64_t chunk(std::size_t senders = 1) const
    {
        const std::uint64_t smooth = std::clamp<std::uint64_t>(rate_ / 50, 1024, 256 * 1024);
        const std::uint64_t turn = rate_ * 10 / std::max<std::uint64_t>(senders, 1);
        return std::max<std::uint64_t>(std::min(smooth, turn), 64);
    }

    void refill(std::uint64_t now_ms)
    {
        if (now_ms <= last_ms_)
            return;
        const auto add = static_cast<std::int64_t>((now_ms - last_ms_) * rate_ / 1000);
        if (add == 0)
            return;  // keep last_ms_: small steps add up rather than round to nothing
        tokens_ = std::min(tokens_ + add, burst_);
        last_ms_ = now_ms;
    }
    // True when `n` bytes may go now (they are taken); false while in debt.
    bool take(std::uint64_t n, std::uint64_t now_ms)
    {
        refill(now_ms);
        if (tokens_ < 0)
            return false;
        tokens_ -= static_cast<std::int64_t>(n);
        return true;
    }
    // How long until a take can succeed (0: now).
    std::uint64_t wait_ms(std::uint64_t now_ms)
    {
        refill(now_ms);
        if (tokens_ >= 0 || rate_ == 0)
            return 0;
        return (static_cast<std::uint64_t>(-tokens_) * 1000 + rate_ - 1) / rate_;
    }

private:
    std::uint64_t rate_ = 0;
    std::int64_t burst_ = 1;
    std::int64_t tokens_ = 0;
    std::uint64_t last_ms_ = 0;
};

}  // namespace peerdex
