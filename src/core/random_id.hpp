// Private: random identifiers for engine uids and workflow scope ids.
#pragma once

#include <string>

namespace asyncflow::detail {

/// Eight random lowercase hex digits ("3a1b9c2d").
std::string random_hex8();

}  // namespace asyncflow::detail
