#include "clipxai/checkpoint.h"

#include <filesystem>

#include "clipxai/error.h"

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

Checkpoint read_checkpoint(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw model_error(path + ": no such file");
  if (!std::filesystem::is_regular_file(path, error)) throw model_error(path + ": not a file");
  std::string reasons;
  for (const CheckpointFormat& format : checkpoint_formats()) {
    const std::optional<std::string> rejected = format.rejects(path);
    if (!rejected) {
      Checkpoint checkpoint = format.read(path);
      checkpoint.format = format.name;
      return checkpoint;
    }
    reasons += std::string(reasons.empty() ? "" : "; ") + "not a " + format.description + " (" +
               *rejected + ")";
  }
  throw model_error(path + ": " + reasons);
}

}  // namespace clipxai
