// The state-dict checkpoint format: a bare .safetensors or torch.save file of OpenAI's parameter
// names (openai_layout.h), as open_clip's and other training code's state dicts are, with the
// architecture inferred from the shapes; LoadOptions::model_config (--model-config) supplies what
// shapes cannot tell (heads when the width is not 64 per head, the activation, mean and std).
// A file of transformers' names is pointed to its folder (hf-transformers).
#include <filesystem>

#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "openai_layout.h"
#include "tensor_file.h"

namespace clipxai {
namespace {

std::optional<std::string> rejects(const std::string& path) {
  if (std::filesystem::is_directory(path)) return "a folder";
  std::string why;
  if (!sniff_tensor_file(path, &why)) return why;
  return std::nullopt;
}

Checkpoint read(const std::string& path, const LoadOptions& options) {
  const NamedTensors tensors = read_tensor_file(path);
  for (const char* prefix : {"vision_model.", "text_model."}) {
    for (const auto& [name, tensor] : tensors) {
      if (name.rfind(prefix, 0) == 0) {
        throw model_error(path + ": holds Hugging Face transformers names (" + name +
                          "); give --model the folder with its config.json");
      }
    }
  }
  StatedFacts facts;
  apply_model_config(path, options, facts);
  return checkpoint_from_openai_names(path, tensors, facts);
}

}  // namespace

CheckpointFormat state_dict_checkpoint_format() {
  return {"state-dict", "a state dict of OpenAI's names", rejects, read};
}

}  // namespace clipxai
