#include "clipxai/checkpoint.h"

#include <filesystem>

#include "clipxai/error.h"
#include "clipxai/input_file.h"

namespace clipxai {

#define CLIPXAI_CHECKPOINT_FORMAT(name) CheckpointFormat name##_checkpoint_format();
#include "checkpoint_formats.h"
#undef CLIPXAI_CHECKPOINT_FORMAT

const std::vector<CheckpointFormat>& checkpoint_formats() {
  static const std::vector<CheckpointFormat> formats = {
#define CLIPXAI_CHECKPOINT_FORMAT(name) name##_checkpoint_format(),
#include "checkpoint_formats.h"
#undef CLIPXAI_CHECKPOINT_FORMAT
  };
  return formats;
}

Checkpoint read_checkpoint(const std::string& path, const LoadOptions& options) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw model_error(path + ": no such file or folder");
  if (const auto problem = input_file_problem(path);
      problem && !std::filesystem::is_directory(path, error)) {
    throw model_error(path + ": " + *problem);
  }
  std::string reasons;
  for (const CheckpointFormat& format : checkpoint_formats()) {
    const std::optional<std::string> rejected = format.rejects(path);
    if (!rejected) {
      Checkpoint checkpoint = format.read(path, options);
      checkpoint.format = format.name;
      return checkpoint;
    }
    reasons += std::string(reasons.empty() ? "" : "; ") + "not " + format.description + " (" +
               *rejected + ")";
  }
  throw model_error(path + ": " + reasons);
}

}  // namespace clipxai
