// Checkpoints: one reader per file format, each turning a file into the typed weights and the
// architecture facts of model.h. ClipModel::load picks the reader.
//
// Formats, in the order they are tried (src/checkpoint_formats.h registers them):
//   openai-torchscript  OpenAI's released ViT files and the project's own exporters: a TorchScript
//                       archive (zip) with OpenAI's parameter names (src/checkpoint_torchscript.cpp
//                       documents the layout and its optional config.json).
// A reader first sniffs the file (a few bytes: magic numbers, file names) and says why it is not
// its format; the first reader that accepts reads it. A file no reader accepts is an Error(Model)
// that gives every reader's reason. Weights come out as fp32, contiguous, on the CPU.
//
// Adding a format: one src/checkpoint_<name>.cpp defining a CheckpointFormat
// `<name>_checkpoint_format()` and one line in src/checkpoint_formats.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "clipxai/model.h"

namespace clipxai {

struct Checkpoint {
  std::string format;  // the reader's name
  ModelConfig config;
  MethodDefaults method_defaults;
  ClipWeights weights;
  std::optional<std::string> vocabulary;  // gzip'd BPE merge list (tokenizer.h), if it has one
};

struct CheckpointFormat {
  const char* name;         // "openai-torchscript"
  const char* description;  // "TorchScript archive", as in "not a TorchScript archive (...)"
  // Why `path` (a regular file) is not of this format, or nullopt when it may be.
  std::optional<std::string> (*rejects)(const std::string& path);
  // Throws Error(Model) naming the file for anything wrong inside it.
  Checkpoint (*read)(const std::string& path);
};

// Every registered format, in the order they are tried.
const std::vector<CheckpointFormat>& checkpoint_formats();

// Throws Error(Model) naming the file: missing, not a regular file, or of no registered format
// (with each format's reason), and whatever the chosen reader throws.
Checkpoint read_checkpoint(const std::string& path);

}  // namespace clipxai
