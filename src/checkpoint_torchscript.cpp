// The openai-torchscript checkpoint format: a TorchScript archive (traced or scripted, as OpenAI
// released its ViT files and as the project's exporters write) whose parameters, buffers or tensor
// attributes carry OpenAI's names (openai_layout.h). Weights may be fp16 or fp32. Optional extra
// files, stored with torch.jit.save's _extra_files:
//   config.json                  — see openai_layout.h;
//   bpe_simple_vocab_16e6.txt.gz — the tokenizer vocabulary that travels with the model.
#include <filesystem>
#include <fstream>

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "openai_layout.h"

namespace clipxai {
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kVocabularyFile = "bpe_simple_vocab_16e6.txt.gz";

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

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

// Every tensor the module holds — parameters, buffers and plain tensor attributes (traced files
// may keep weights in any of these) — by qualified name, as fp32 contiguous tensors.
NamedTensors collect_tensors(const torch::jit::Module& module) {
  NamedTensors tensors;
  for (const auto& attribute : module.named_attributes(/*recurse=*/true)) {
    if (!attribute.value.isTensor()) continue;
    tensors.emplace(attribute.name,
                    attribute.value.toTensor().detach().to(torch::kFloat).contiguous());
  }
  return tensors;
}

Checkpoint read(const std::string& path, const LoadOptions& options) {
  check_complete(path);
  torch::jit::ExtraFilesMap extra_files{{kConfigFile, ""}, {kVocabularyFile, ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU, extra_files);
  } catch (const c10::Error& e) {
    throw model_error(path + ": not a TorchScript archive (" +
                      first_line(e.what_without_backtrace()) + ")");
  } catch (const std::exception& e) {
    throw model_error(path + ": not a TorchScript archive (" + first_line(e.what()) + ")");
  }
  StatedFacts facts;
  if (!extra_files[kConfigFile].empty()) {
    apply_config_json(path, kConfigFile, extra_files[kConfigFile], facts);
  }
  apply_model_config(path, options, facts);
  Checkpoint checkpoint = checkpoint_from_openai_names(path, collect_tensors(module), facts);
  if (!extra_files[kVocabularyFile].empty()) {
    checkpoint.vocabulary = VocabularyFiles{"vocabulary embedded in " + path,
                                            std::move(extra_files[kVocabularyFile]), "", ""};
  }
  return checkpoint;
}

}  // namespace

CheckpointFormat torchscript_checkpoint_format() {
  return {"openai-torchscript", "a TorchScript archive", rejects, read};
}

}  // namespace clipxai
