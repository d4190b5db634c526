// clipxai::Error — the one exception type the library throws.
//
// Every failure a user can cause or meet carries a category, which the command line maps to its
// exit code, and a one-line message that names the file involved and what was expected:
//   Usage    bad options or arguments                     -> exit 2
//   Input    an image, prompt or data file is unusable    -> exit 2
//   Model    a model archive or vocabulary cannot be used -> exit 3
//   Internal a bug or an unexpected library failure       -> exit 4
// Library code throws; only the command line's entry point catches.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>

namespace clipxai {

enum class ErrorCategory { Usage, Input, Model, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorCategory category, const std::string& message)
      : std::runtime_error(message), category_(category) {}

  ErrorCategory category() const { return category_; }

 private:
  ErrorCategory category_;
};

// Convenience constructors so call sites read as what went wrong.
inline Error usage_error(const std::string& message) { return {ErrorCategory::Usage, message}; }
inline Error input_error(const std::string& message) { return {ErrorCategory::Input, message}; }
inline Error model_error(const std::string& message) { return {ErrorCategory::Model, message}; }

// `message` as one printable line: trailing whitespace dropped, and control characters — a
// newline or escape sequence in a file name, a library's multi-line text — written as \n, \r,
// \t or \xHH, so a hostile name can neither forge a second line nor drive the terminal.
inline std::string message_line(const std::string& message) {
  size_t end = message.size();
  while (end > 0 && (message[end - 1] == ' ' || message[end - 1] == '\n' ||
                     message[end - 1] == '\r' || message[end - 1] == '\t')) {
    --end;
  }
  std::string line;
  for (size_t i = 0; i < end; ++i) {
    const auto byte = static_cast<unsigned char>(message[i]);
    if (byte == '\n') {
      line += "\\n";
    } else if (byte == '\r') {
      line += "\\r";
    } else if (byte == '\t') {
      line += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      line += escaped;
    } else {
      line += static_cast<char>(byte);
    }
  }
  return line;
}

// Process exit codes, documented in the README.
enum ExitCode : int {
  kExitOk = 0,
  kExitDifferent = 1,  // `clipxai check` found differences
  kExitUsageOrInput = 2,
  kExitModel = 3,
  kExitInternal = 4,
};

inline int exit_code_for(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::Usage:
    case ErrorCategory::Input:
      return kExitUsageOrInput;
    case ErrorCategory::Model:
      return kExitModel;
    case ErrorCategory::Internal:
      break;
  }
  return kExitInternal;
}

}  // namespace clipxai
