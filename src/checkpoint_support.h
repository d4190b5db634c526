// Internal: what the readers of checkpoints that come as folders of files share — the folder's
// files, its tokenizer, typed look-ups in its JSON configuration with every message naming the
// file and the field, and the check that what a configuration states agrees with the shapes.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "clipxai/model.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

// `file`'s text, or nullopt when there is no such file. Throws Error(Model) naming `path` (the
// checkpoint) when it exists but cannot be read.
std::optional<std::string> read_optional_file(const std::string& path,
                                              const std::filesystem::path& file);

// The tokenizer a folder holds as vocab.json + merges.txt (transformers' CLIPTokenizer files),
// if it holds both.
std::optional<VocabularyFiles> folder_vocabulary(const std::string& path,
                                                 const std::filesystem::path& folder);

// The name to show for a checkpoint at `path`: the folder's name, or a file's folder's name.
std::string checkpoint_name(const std::string& path);

// One JSON object of a configuration file, looked up with defaults: each look-up checks the type
// and names "PATH: FILE: prefix.key" when it is wrong.
class ConfigObject {
 public:
  // Parses `text`; throws Error(Model) when it is not a JSON object.
  static ConfigObject parse(const std::string& path, const std::string& file,
                            const std::string& text);

  bool has(const std::string& key) const;
  // The object under `key`: an empty one when absent; an error when not an object.
  ConfigObject child(const std::string& key) const;
  // A positive integer.
  int64_t positive(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  // Three numbers (R, G, B), positive if `positive`.
  std::optional<std::array<float, 3>> colour(const std::string& key, bool positive) const;
  // A square size given as N, [N, N] or {"height": N, "width": N} (and {"shortest_edge": N}).
  std::optional<int64_t> square_size(const std::string& key) const;
  const nlohmann::json& json() const { return json_; }

  // "FILE: prefix.key", as messages and Checkpoint::fact_sources name a field.
  std::string field(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  ConfigObject(std::string path, std::string file, std::string prefix, nlohmann::json json)
      : path_(std::move(path)),
        file_(std::move(file)),
        prefix_(std::move(prefix)),
        json_(std::move(json)) {}

  std::string path_, file_, prefix_;
  nlohmann::json json_;
};

// A size a configuration states, with the size the shapes gave.
struct StatedSize {
  std::string field;  // ConfigObject::field
  int64_t stated;
  int64_t from_shapes;
};

// Throws Error(Model) "PATH: FIELD is S, but the weights' shapes give N" for the first that
// disagrees.
void check_stated_sizes(const std::string& path, const std::vector<StatedSize>& sizes);

}  // namespace clipxai
