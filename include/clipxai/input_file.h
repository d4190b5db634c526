// The files a user names — images, image lists, prompt files, manifests, run documents,
// vocabularies — read with the checks every such read needs. Only a regular file is opened: a
// FIFO would block the reader forever and a device such as /dev/zero never ends. Text inputs are
// bounded in size, so a huge one is an error rather than a read until memory runs out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace clipxai
