// Test helper: the random-weight archives and reference outputs that
// scripts/make_reference_models.py writes to tests/data/model/ (see that script for the format).
// $CLIPXAI_MODEL_REFERENCE_DIR points the tests at another such directory, e.g. the ViT-B/32
// size check (`make_reference_models.py --vit-b32 DIR`), too big to commit.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "clipxai/tokenizer.h"

namespace clipxai::testing {

inline std::string reference_directory() {
  const char* override_dir = std::getenv("CLIPXAI_MODEL_REFERENCE_DIR");
  return override_dir != nullptr ? override_dir : CLIPXAI_TEST_DATA "/model";
}

inline std::string model_data(const std::string& name) {
  return reference_directory() + "/" + name;
}

// Every *.reference.json of the directory, sorted.
inline std::vector<std::string> reference_files() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(reference_directory())) {
    const auto name = entry.path().filename().string();
    const std::string suffix = ".reference.json";
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// gtest parameter names: "tiny_vit_fp16" for ".../tiny_vit_fp16.reference.json".
inline std::string reference_name(const std::string& file) {
  auto name = std::filesystem::path(file).filename().string();
  return name.substr(0, name.find('.'));
}

// A stored prompt {"text", "ids" (all context slots)} as the tokenizer would give it: the EOT is
// the highest id.
inline TokenizedText stored_prompt(const nlohmann::json& prompt) {
  TokenizedText text;
  text.text = prompt["text"].get<std::string>();
  text.ids = prompt["ids"].get<std::vector<int64_t>>();
  text.eot_index =
      static_cast<int>(std::max_element(text.ids.begin(), text.ids.end()) - text.ids.begin());
  return text;
}

struct Reference {
  nlohmann::json json;

  explicit Reference(const std::string& file) { std::ifstream(file) >> json; }

  std::string archive() const { return model_data(json["archive"].get<std::string>()); }

  // [images, 3, R, R] float32.
  torch::Tensor images() const {
    const int resolution = json["config"]["input_resolution"].get<int>();
    const auto path = model_data(json["images"].get<std::string>());
    const auto bytes = std::filesystem::file_size(path);
    const auto count = static_cast<int64_t>(bytes / (sizeof(float) * 3 * resolution * resolution));
    auto images = torch::empty({count, 3, resolution, resolution}, torch::kFloat);
    std::ifstream(path, std::ios::binary)
        .read(reinterpret_cast<char*>(images.data_ptr<float>()),
              static_cast<std::streamsize>(bytes));
    return images;
  }

  // The prompts as the tokenizer would give them, built from the stored ids.
  std::vector<TokenizedText> prompts() const {
    std::vector<TokenizedText> prompts;
    for (const auto& prompt : json["prompts"]) prompts.push_back(stored_prompt(prompt));
    return prompts;
  }

  torch::Tensor prompt_ids() const {
    std::vector<torch::Tensor> rows;
    for (const auto& prompt : prompts()) rows.push_back(torch::tensor(prompt.ids, torch::kLong));
    return torch::stack(rows);
  }
};

inline torch::Tensor to_tensor(const nlohmann::json& values) {
  std::vector<float> flat;
  std::vector<int64_t> shape;
  const nlohmann::json* level = &values;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
    level = &(*level)[0];
  }
  const auto flatten = [&](const auto& self, const nlohmann::json& node) -> void {
    if (node.is_array()) {
      for (const auto& child : node) self(self, child);
    } else {
      flat.push_back(node.get<float>());
    }
  };
  flatten(flatten, values);
  return torch::tensor(flat, torch::kFloat).reshape(shape);
}

// max|actual - expected| / max|expected|
inline double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>() /
         expected.to(torch::kDouble).abs().max().item<double>();
}

}  // namespace clipxai::testing
