// The date-time service's own decisions (peerdex-protocol(7), DATE-TIME SERVICE): any Accept
// header gives an answer, and the same one twice; a timestamp is written for any time, even
// one the C library cannot convert.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <string>

#include "datetime.hh"
#include "pieces.hh"

using namespace peerdex;
using peerdex::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::Input in(data, size);
    const bool json = prefers_json(in.bytes);
    check(json == prefers_json(std::string(in.bytes)), "the same header answered two ways");
    std::time_t t = 0;
    if (!in.bytes.empty())
        std::memcpy(&t, in.bytes.data(), std::min(sizeof t, in.bytes.size()));
    check(course_timestamp(t).size() < 32 && iso8601_timestamp(t).size() < 40, "a timestamp overflowed");
    return 0;
}
