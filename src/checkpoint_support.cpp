#include "checkpoint_support.h"

#include <algorithm>
#include <limits>

#include "clipxai/error.h"
#include "clipxai/input_file.h"

namespace clipxai {

std::optional<std::string> read_optional_file(const std::string& path,
                                              const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::exists(file, error)) return std::nullopt;
  try {
    return read_input_file(file.string(), "configuration", kMaxTextInputBytes,
                           ErrorCategory::Model);
  } catch (const Error& e) {
    throw model_error(path + ": " + e.what());
  }
}

std::optional<VocabularyFiles> folder_vocabulary(const std::string& path,
                                                 const std::filesystem::path& folder) {
  std::optional<std::string> vocab_json = read_optional_file(path, folder / "vocab.json");
  std::optional<std::string> merges_txt = read_optional_file(path, folder / "merges.txt");
  if (!vocab_json || !merges_txt) return std::nullopt;
  return VocabularyFiles{(folder / "vocab.json").string() + " and merges.txt", "",
                         std::move(*vocab_json), std::move(*merges_txt)};
}

std::string checkpoint_name(const std::string& path) {
  std::filesystem::path absolute = std::filesystem::absolute(path).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  if (!std::filesystem::is_directory(absolute)) absolute = absolute.parent_path();
  return absolute.filename().string();
}

ConfigObject ConfigObject::parse(const std::string& path, const std::string& file,
                                 const std::string& text) {
  nlohmann::json json = parse_json_input(text, path + ": " + file, ErrorCategory::Model);
  if (!json.is_object()) throw model_error(path + ": " + file + " is not a JSON object");
  return ConfigObject(path, file, "", std::move(json));
}

std::string ConfigObject::field(const std::string& key) const {
  return file_ + ": " + prefix_ + key;
}

void ConfigObject::fail(const std::string& key, const std::string& what) const {
  throw model_error(path_ + ": " + field(key) + " " + what);
}

bool ConfigObject::has(const std::string& key) const {
  return json_.contains(key) && !json_[key].is_null();
}

ConfigObject ConfigObject::child(const std::string& key) const {
  if (!has(key)) return ConfigObject(path_, file_, prefix_ + key + ".", nlohmann::json::object());
  if (!json_[key].is_object()) fail(key, "must be a JSON object");
  return ConfigObject(path_, file_, prefix_ + key + ".", json_[key]);
}

int64_t ConfigObject::positive(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto& value = json_[key];
  if (!value.is_number_integer() || value.get<int64_t>() <= 0 ||
      value.get<int64_t>() > std::numeric_limits<int>::max()) {
    fail(key, "must be a positive integer, not " + value.dump());
  }
  return value.get<int64_t>();
}

double ConfigObject::number(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  if (!json_[key].is_number()) fail(key, "must be a number, not " + json_[key].dump());
  return json_[key].get<double>();
}

bool ConfigObject::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!json_[key].is_boolean()) fail(key, "must be true or false, not " + json_[key].dump());
  return json_[key].get<bool>();
}

std::string ConfigObject::text(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  if (!json_[key].is_string()) fail(key, "must be a string, not " + json_[key].dump());
  return json_[key].get<std::string>();
}

std::optional<std::array<float, 3>> ConfigObject::colour(const std::string& key,
                                                         bool positive) const {
  if (!has(key)) return std::nullopt;
  const auto& value = json_[key];
  const bool ok = value.is_array() && value.size() == 3 &&
                  std::all_of(value.begin(), value.end(), [&](const nlohmann::json& v) {
                    return v.is_number() && (!positive || v.get<double>() > 0);
                  });
  if (!ok)
    fail(key, std::string("must be 3 ") + (positive ? "positive " : "") + "numbers (R, G, B)");
  return std::array<float, 3>{value[0].get<float>(), value[1].get<float>(), value[2].get<float>()};
}

std::optional<int64_t> ConfigObject::square_size(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = json_[key];
  const auto positive_int = [](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() > 0;
  };
  if (positive_int(value)) return value.get<int64_t>();
  if (value.is_array() && value.size() == 2 && positive_int(value[0]) && value[0] == value[1]) {
    return value[0].get<int64_t>();
  }
  if (value.is_object()) {
    if (value.contains("shortest_edge") && positive_int(value["shortest_edge"])) {
      return value["shortest_edge"].get<int64_t>();
    }
    if (value.contains("height") && positive_int(value["height"]) && value.contains("width") &&
        value["height"] == value["width"]) {
      return value["height"].get<int64_t>();
    }
  }
  fail(key,
       "must be a square size (N, [N, N], {\"height\": N, \"width\": N} or "
       "{\"shortest_edge\": N}), not " +
           value.dump());
}

void check_stated_sizes(const std::string& path, const std::vector<StatedSize>& sizes) {
  for (const StatedSize& size : sizes) {
    if (size.stated != size.from_shapes) {
      throw model_error(path + ": " + size.field + " is " + std::to_string(size.stated) +
                        ", but the weights' shapes give " + std::to_string(size.from_shapes));
    }
  }
}

}  // namespace clipxai
