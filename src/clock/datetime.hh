// What peerdex-clock answers (peerdex-protocol(7), DATE-TIME SERVICE), without any HTTP:
// the timestamp in its formats and the choice of representation from an Accept header.
// Pure.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace peerdex {

// "22/11/2026 22:38:16": the course's TS, in the local time zone (TZ).
std::string course_timestamp(std::time_t t);
// "2026-11-22T22:38:16+01:00": ISO 8601 with the UTC offset of the local time zone.
std::string iso8601_timestamp(std::time_t t);

// True when the Accept header prefers application/json to text/plain (by q-values,
// then by specificity); false for a missing or indifferent header.
bool prefers_json(std::string_view accept);

}  // namespace peerdex
