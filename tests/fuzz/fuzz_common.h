// What the libFuzzer targets share: the bytes as a file (the readers that take a path), and the
// rule that a clipxai::Error is a correct answer to bad input while anything else is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "clipxai/error.h"

namespace clipxai::fuzz {

inline std::string bytes_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A path of this process's own under /tmp, holding `bytes`; `name` keeps the extension a reader
// looks at.
inline std::string scratch_file(const std::string& name, const std::string& bytes) {
  const std::string path = "/tmp/clipxai-fuzz-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

// Runs `parse`; a clipxai::Error is how bad input must end. Other exceptions propagate, so
// libFuzzer reports them as crashes.
template <typename Parse>
void expect_clean_outcome(Parse parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

}  // namespace clipxai::fuzz
