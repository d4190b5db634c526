#include "clipxai/batch.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "clipxai/check.h"
#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "clipxai/output.h"
#include "text_cleanup.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 7> kImageExtensions = {"jpg", "jpeg", "png", "webp",
                                                         "bmp", "tif",  "tiff"};

// A directory's identity, so that a symbolic link back to it is recognised.
struct DirectoryId {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const DirectoryId& other) const {
    return device == other.device && inode == other.inode;
  }
};

std::optional<DirectoryId> directory_id(const fs::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) return std::nullopt;
  return DirectoryId{status.st_dev, status.st_ino};
}

struct Walk {
  std::optional<DirectoryId> excluded;
  std::vector<DirectoryId> ancestors;  // the directories being walked, root first
  std::vector<BatchInput> found;
};

void walk_directory(const fs::path& directory, const fs::path& relative, Walk& walk) {
  std::error_code error;
  fs::directory_iterator entries(directory, error);
  if (error) {
    throw input_error(directory.string() + ": cannot read the directory: " + error.message());
  }
  for (const fs::directory_entry& entry : entries) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (const std::optional<DirectoryId> id = directory_id(entry.path())) {
      const bool is_loop =
          std::find(walk.ancestors.begin(), walk.ancestors.end(), *id) != walk.ancestors.end();
      if (is_loop || id == walk.excluded) continue;
      walk.ancestors.push_back(*id);
      walk_directory(entry.path(), relative / name, walk);
      walk.ancestors.pop_back();
    } else if (std::error_code type_error; entry.is_directory(type_error)) {
      // A directory the listing names but its path cannot reach (longer than PATH_MAX): its
      // images must not vanish from the run unnoticed.
      struct stat status {};
      const int stat_error = ::stat(entry.path().c_str(), &status) == 0 ? ENOTDIR : errno;
      throw input_error(entry.path().string() +
                        ": cannot read the directory: " + std::strerror(stat_error));
    } else if (has_image_extension(name)) {
      walk.found.push_back({entry.path().string(), (relative / name).generic_string(), ""});
    }
  }
}

std::vector<BatchInput> enumerate_directory(const fs::path& root, const std::string& excluded_dir) {
  Walk walk;
  if (!excluded_dir.empty()) walk.excluded = directory_id(excluded_dir);
  const DirectoryId root_id = *directory_id(root);
  if (walk.excluded == root_id) {
    throw usage_error(root.string() + ": the output directory " + excluded_dir +
                      " cannot be the input directory; write the outputs elsewhere");
  }
  walk.ancestors.push_back(root_id);
  try {
    walk_directory(root, "", walk);
  } catch (const fs::filesystem_error& error) {
    throw input_error(error.path1().string() +
                      ": cannot read the directory: " + error.code().message());
  }
  if (walk.found.empty()) {
    throw usage_error(root.string() +
                      ": no images (jpg, jpeg, png, webp, bmp, tif, tiff) below it");
  }
  return std::move(walk.found);
}

std::string trim(const std::string& text) {
  const char* kSpace = " \t\r\n\v\f";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

// Lines of a text file with their 1-based numbers, trimmed, blank ones dropped.
std::vector<std::pair<size_t, std::string>> read_nonblank_lines(const std::string& path,
                                                                const std::string& what) {
  std::istringstream file(read_input_file(path, what));
  std::vector<std::pair<size_t, std::string>> lines;
  std::string line;
  for (size_t number = 1; std::getline(file, line); ++number) {
    if (number == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    line = trim(line);
    if (!line.empty()) lines.emplace_back(number, line);
  }
  return lines;
}

std::vector<BatchInput> enumerate_list(const std::string& list_path) {
  const fs::path base = fs::path(list_path).parent_path();
  std::vector<BatchInput> inputs;
  std::map<std::string, size_t> line_of_key;
  for (const auto& [number, line] : read_nonblank_lines(list_path, "image list")) {
    if (line[0] == '#') continue;
    const fs::path listed(line);
    const std::string key = listed.lexically_normal().generic_string();
    const auto [previous, inserted] = line_of_key.emplace(key, number);
    if (!inserted) {
      throw usage_error(list_path + ": lines " + std::to_string(previous->second) + " and " +
                        std::to_string(number) + " both name " + key + "; list each image once");
    }
    inputs.push_back({(listed.is_absolute() ? listed : base / listed).string(), key, ""});
  }
  if (inputs.empty()) throw usage_error(list_path + ": the image list names no images");
  return inputs;
}

// `key` as a relative path that stays inside --out.
fs::path contained_path(const fs::path& key) {
  fs::path contained;
  if (key.has_root_path()) contained /= "_root";
  for (const fs::path& component : key.relative_path()) {
    if (component == "..") {
      contained /= "_up";
    } else if (component != "." && !component.empty()) {
      contained /= component;
    }
  }
  return contained;
}

uint64_t fnv1a64(const std::string& bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (const unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 1099511628211ull;
  }
  return hash;
}

// A file name component `name` short enough that `name`__<slug>.png fits the file system's
// 255-byte limit: cut at a character boundary and marked with a hash of the whole name.
std::string shortened_base_name(const std::string& name) {
  if (name.size() <= kMaxOutputBaseNameBytes) return name;
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a64(name)));
  size_t cut = kMaxOutputBaseNameBytes - 17;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return name.substr(0, cut) + "~" + hash;
}

// Stems where they are unique within their directory, full file names where they are not.
void assign_output_bases(std::vector<BatchInput>& inputs, bool single_file) {
  std::vector<fs::path> relatives;
  std::map<fs::path, int> stem_count;
  for (const BatchInput& input : inputs) {
    relatives.push_back(single_file ? fs::path(input.key).filename() : contained_path(input.key));
    ++stem_count[relatives.back().parent_path() / relatives.back().stem()];
  }
  std::map<std::string, const BatchInput*> owner;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const fs::path stem = relatives[i].parent_path() / relatives[i].stem();
    const fs::path base = stem_count[stem] > 1 ? relatives[i] : stem;
    inputs[i].output_base =
        (base.parent_path() / shortened_base_name(base.filename().string())).generic_string();
    const auto [previous, inserted] = owner.emplace(inputs[i].output_base, &inputs[i]);
    if (!inserted) {
      throw usage_error(previous->second->key + " and " + inputs[i].key +
                        " would write their outputs to the same place (" + inputs[i].output_base +
                        "); rename one of them");
    }
  }
}

// MurmurHash3's 64-bit finaliser: FNV's low bits alone split short similar keys unevenly.
uint64_t mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

std::optional<int> parse_positive(const std::string& digits) {
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  return std::stoi(digits);
}

}  // namespace

bool has_image_extension(const std::string& name) {
  std::string extension = fs::path(name).extension().string();
  if (extension.empty()) return false;
  extension.erase(0, 1);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return std::find(kImageExtensions.begin(), kImageExtensions.end(), extension) !=
         kImageExtensions.end();
}

std::vector<BatchInput> enumerate_inputs(const std::string& argument,
                                         const std::string& excluded_dir) {
  std::vector<BatchInput> inputs;
  const bool is_list = argument.size() > 1 && argument[0] == '@';
  const bool is_directory = !is_list && directory_id(argument).has_value();
  if (is_list) {
    inputs = enumerate_list(argument.substr(1));
  } else if (is_directory) {
    inputs = enumerate_directory(argument, excluded_dir);
  } else {
    inputs.push_back({argument, argument, ""});
  }
  for (BatchInput& input : inputs) input.key = path_text(input.key);
  std::sort(inputs.begin(), inputs.end(), [](const BatchInput& a, const BatchInput& b) {
    return image_order_less(a.key, b.key);
  });
  assign_output_bases(inputs, !is_list && !is_directory);
  return inputs;
}

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::vector<std::string> prompts;
  for (auto& [number, line] : read_nonblank_lines(path, "prompt file")) {
    try {
      text::decode_utf8(line);
    } catch (const Error&) {
      throw input_error(path + ":" + std::to_string(number) + ": not valid UTF-8");
    }
    prompts.push_back(std::move(line));
  }
  return prompts;
}

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  const std::optional<int> index =
      slash == std::string::npos ? std::nullopt : parse_positive(text.substr(0, slash));
  const std::optional<int> count =
      slash == std::string::npos ? std::nullopt : parse_positive(text.substr(slash + 1));
  if (!index || !count || *index < 1 || *index > *count) {
    throw usage_error("--shard " + text +
                      ": expected K/N with whole numbers 1 <= K <= N, e.g. 1/4 for the first of "
                      "four shares");
  }
  return {*index, *count};
}

uint64_t shard_hash(const std::string& key) { return mix64(fnv1a64(key)); }

bool in_shard(const std::string& key, const Shard& shard) {
  return shard_hash(key) % static_cast<uint64_t>(shard.count) ==
         static_cast<uint64_t>(shard.index - 1);
}

std::vector<BatchInput> select_shard(const std::vector<BatchInput>& inputs, const Shard& shard) {
  std::vector<BatchInput> selected;
  std::copy_if(inputs.begin(), inputs.end(), std::back_inserter(selected),
               [&](const BatchInput& input) { return in_shard(input.key, shard); });
  return selected;
}

}  // namespace clipxai
