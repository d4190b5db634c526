// The openai-torchscript checkpoint format: a TorchScript archive (traced or scripted, as OpenAI
// released its ViT files and as the project's exporters write) whose parameters, buffers or tensor
// attributes carry OpenAI's names (openai_layout.h). Weights may be fp16 or fp32. The tensors are
// read from the archive's module tree directly (tensor_file.h), without LibTorch's TorchScript
// loader, which would compile every module's code first. Optional extra files, stored with
// torch.jit.save's _extra_files:
//   config.json                  — see openai_layout.h;
//   bpe_simple_vocab_16e6.txt.gz — the tokenizer vocabulary that travels with the model.
#include <filesystem>
#include <fstream>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "openai_layout.h"
#include "tensor_file.h"

namespace clipxai {
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kVocabularyFile = "bpe_simple_vocab_16e6.txt.gz";

std::optional<std::string> rejects(const std::string& path) {
  if (std::filesystem::is_directory(path)) return "a folder";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be opened for reading";
  std::string head(4, '\0');
  in.read(head.data(), 4);
  if (in.gcount() < 4 || head != std::string("PK\x03\x04", 4)) return "not a zip file";
  // torch.save writes zip files too; only TorchScript's hold constants.pkl. A zip the reader
  // cannot open is left to read(), which says what is wrong with it.
  try {
    if (!caffe2::serialize::PyTorchStreamReader(path).hasRecord("constants.pkl")) {
      return "a zip file without constants.pkl, as torch.save writes";
    }
  } catch (const c10::Error&) {
  }
  return std::nullopt;
}

// A zip file cut short lacks the complete end-of-central-directory record that closes every zip
// file, which lets the error say "truncated" rather than "garbage".
void check_complete(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  std::ifstream in(path, std::ios::binary);
  // The record: signature, 16 bytes, a 2-byte comment length at offset 20, then the comment.
  constexpr std::uintmax_t kRecordSize = 22;
  const std::uintmax_t tail_size = std::min<std::uintmax_t>(size, kRecordSize + 65535);
  std::string tail(tail_size, '\0');
  in.seekg(static_cast<std::streamoff>(size - tail_size));
  in.read(tail.data(), static_cast<std::streamsize>(tail_size));
  const auto record = tail.rfind(std::string("PK\x05\x06", 4));
  const bool complete = !error && in && record != std::string::npos &&
                        record + kRecordSize <= tail_size &&
                        record + kRecordSize +
                                (static_cast<unsigned char>(tail[record + 20]) |
                                 static_cast<unsigned char>(tail[record + 21]) << 8) ==
                            tail_size;
  if (!complete) throw model_error(path + ": truncated archive (the zip file is cut short)");
}

Checkpoint read(const std::string& path, const LoadOptions& options) {
  check_complete(path);
  TorchScriptArchive archive = read_torchscript(path, {kConfigFile, kVocabularyFile});
  StatedFacts facts;
  if (const auto config = archive.extra_files.find(kConfigFile);
      config != archive.extra_files.end() && !config->second.empty()) {
    apply_config_json(path, kConfigFile, config->second, facts);
  }
  apply_model_config(path, options, facts);
  Checkpoint checkpoint = checkpoint_from_openai_names(path, std::move(archive.tensors), facts);
  if (const auto vocabulary = archive.extra_files.find(kVocabularyFile);
      vocabulary != archive.extra_files.end() && !vocabulary->second.empty()) {
    checkpoint.vocabulary =
        VocabularyFiles{"vocabulary embedded in " + path, std::move(vocabulary->second), "", ""};
  }
  return checkpoint;
}

}  // namespace

CheckpointFormat torchscript_checkpoint_format() {
  return {"openai-torchscript", "a TorchScript archive", rejects, read};
}

}  // namespace clipxai
