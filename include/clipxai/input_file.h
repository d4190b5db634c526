// The files a user names — images, image lists, prompt files, manifests, run documents,
// vocabularies — read with the checks every such read needs. Only a regular file is opened: a
// FIFO would block the reader forever and a device such as /dev/zero never ends. Text inputs are
// bounded in size, so a huge one is an error rather than a read until memory runs out. JSON from
// outside is parsed with a bound on its nesting, so a hostile document cannot exhaust the stack
// or memory of whatever walks it later.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "clipxai/error.h"

namespace clipxai {

// Far above any list, manifest, document or vocabulary clipxai reads (OpenAI's merge list is
// 1.4 MB, a 10,000-image run's document some 100 MB).
inline constexpr uint64_t kMaxTextInputBytes = uint64_t{1} << 30;

// Why `path` cannot be read as an input file — "does not exist", "is a directory", "is not a
// regular file (a FIFO, socket or device)" — or nullopt when it is a regular file.
std::optional<std::string> input_file_problem(const std::string& path);

// The whole file. Throws Error(category) "PATH: cannot read the WHAT: ..." when it has a problem
// above, is larger than `max_bytes` or cannot be read.
std::string read_input_file(const std::string& path, const std::string& what,
                            uint64_t max_bytes = kMaxTextInputBytes,
                            ErrorCategory category = ErrorCategory::Input);

// Far deeper than any JSON clipxai reads: a run document nests 6 levels, a model's config 4.
inline constexpr int kMaxJsonDepth = 100;

// `text` as JSON, or the reason it is not acceptable: not JSON, nested deeper than
// kMaxJsonDepth, or a number outside the range of double (1e400).
std::optional<std::string> parse_json_text(std::string_view text, nlohmann::json& value);

// The same, throwing Error(category) "WHERE: not valid JSON (REASON)".
nlohmann::json parse_json_input(std::string_view text, const std::string& where,
                                ErrorCategory category = ErrorCategory::Input);

}  // namespace clipxai
