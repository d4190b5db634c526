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
