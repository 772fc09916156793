// Text for the status pages' HTML: every value from the network goes through html_escape.
#pragma once

#include <string>
#include <string_view>

namespace peerdex {

// & < > " ' as entities: safe inside an element and inside a quoted attribute.
std::string html_escape(std::string_view text);
// A query-string value: everything but unreserved characters percent-encoded.
std::string url_encode(std::string_view text);

}  // namespace peerdex
