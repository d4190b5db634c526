// Checkpoints: one reader per file format, each turning a file into the typed weights and the
// architecture facts of model.h. ClipModel::load picks the reader.
//
// Formats, in the order they are tried (src/checkpoint_formats.h registers them):
//   openai-torchscript  OpenAI's released ViT files and the project's own exporters: a TorchScript
//                       archive (zip) with OpenAI's parameter names (src/checkpoint_torchscript.cpp
//                       documents the layout and its optional config.json).
//   hf-transformers     a Hugging Face transformers CLIPModel folder, as save_pretrained or a hub
//                       snapshot holds it: config.json, model.safetensors (or sharded with
//                       model.safetensors.index.json, or pytorch_model.bin), preprocessor_config.json
//                       and the tokenizer's vocab.json + merges.txt (src/checkpoint_hf.cpp).
//   open-clip           an open_clip checkpoint: open_clip_model.safetensors or
//                       open_clip_pytorch_model.bin with open_clip_config.json, given as the folder
//                       or as the weights file (src/checkpoint_open_clip.cpp).
//   state-dict          a bare .safetensors or torch.save file with OpenAI's names, the
//                       architecture inferred from the shapes (src/checkpoint_state_dict.cpp).
// The tensor files are read by src/tensor_file.h (safetensors by the project, bounds-checked;
// torch.save by a restricted unpickler). A reader first sniffs the path (a file's first bytes, a
// folder's file names) and says why it is not its format; the first reader that accepts reads it.
// A path no reader accepts is an Error(Model) that gives every reader's reason. Weights come out
// as fp32, contiguous, on the CPU.
//
// Adding a format: one src/checkpoint_<name>.cpp defining a CheckpointFormat
// `<name>_checkpoint_format()` and one line in src/checkpoint_formats.h.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clipxai/model.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct Checkpoint {
  std::string format;  // the reader's name
  ModelConfig config;
  MethodDefaults method_defaults;
  ClipWeights weights;
  std::optional<VocabularyFiles> vocabulary;  // the tokenizer's files, if they come with it
  // Where each fact of report.h's model_json came from: "shapes", the configuration file and key,
  // or "default: ...".
  std::map<std::string, std::string> fact_sources;
};

struct CheckpointFormat {
  const char* name;         // "openai-torchscript"
  const char* description;  // "a TorchScript archive", as in "not a TorchScript archive (...)"
  // Why `path` (an existing file or folder) is not of this format, or nullopt when it may be.
  std::optional<std::string> (*rejects)(const std::string& path);
  // Throws Error(Model) naming the path for anything wrong inside it.
  Checkpoint (*read)(const std::string& path, const LoadOptions& options);
};

// Every registered format, in the order they are tried.
const std::vector<CheckpointFormat>& checkpoint_formats();

// Throws Error(Model) naming the path: missing, of no registered format (with each format's
// reason), and whatever the chosen reader throws.
Checkpoint read_checkpoint(const std::string& path, const LoadOptions& options = {});

}  // namespace clipxai
