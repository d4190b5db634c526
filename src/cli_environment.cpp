#include "clipxai/environment.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "clipxai/error.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

namespace {

// `relative` (a file or folder of the source tree) among the places the executables look for
// what ships with them, in order; the places looked at are added to `looked`.
std::optional<fs::path> find_bundled(const fs::path& relative, std::vector<fs::path>& looked) {
  std::vector<fs::path> prefixes;
  std::error_code error;
  const fs::path binary = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    prefixes.push_back(binary.parent_path() / "..");
    prefixes.push_back(binary.parent_path() / ".." / "share" / "clipxai");
  }
  prefixes.emplace_back(CLIPXAI_SOURCE_DIR);
  for (const fs::path& prefix : prefixes) {
    const fs::path candidate = (prefix / relative).lexically_normal();
    if (std::find(looked.begin(), looked.end(), candidate) != looked.end()) continue;
    if (fs::exists(candidate, error)) return candidate;
    looked.push_back(candidate);
  }
  return std::nullopt;
}

}  // namespace

int available_cores() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
  return 1;
}

std::string resolve_model_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const std::string from_environment = environment("CLIPXAI_MODEL");
      !from_environment.empty()) {
    return from_environment;
  }
  std::vector<fs::path> looked;
  if (const auto found = find_bundled(fs::path("models") / kDefaultModelFile, looked)) {
    return found->string();
  }
  std::string places;
  for (const fs::path& path : looked) places += (places.empty() ? "" : ", ") + path.string();
  throw model_error(
      std::string("no --model given and the default model was not found (looked at ") + places +
      "); pass --model FILE or set CLIPXAI_MODEL");
}

std::string bundled_examples_directory() {
  std::vector<fs::path> looked;
  const auto found = find_bundled("examples", looked);
  return found ? found->string() : "";
}

VocabularySources vocabulary_sources(const std::string& explicit_path) {
  VocabularySources sources;
  sources.explicit_path = explicit_path;
  sources.environment_path = environment("CLIPXAI_VOCAB");
  for (const char* variable : {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
    if (const std::string prefix = environment(variable); !prefix.empty()) {
      sources.site_patterns.push_back(prefix + "/lib/python3*/site-packages");
    }
  }
  if (const std::string home = environment("HOME"); !home.empty()) {
    sources.site_patterns.push_back(home + "/.local/lib/python3*/site-packages");
  }
  for (const char* system :
       {"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
        "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages"}) {
    sources.site_patterns.emplace_back(system);
  }
  return sources;
}

Tokenizer load_tokenizer(const std::string& explicit_path,
                         const std::optional<VocabularyFiles>& embedded,
                         const std::string& model_path, int vocab_size) {
  return load_tokenizer(vocabulary_sources(explicit_path), embedded, model_path, vocab_size);
}

void set_thread_count(int threads) {
  const int count = threads > 0 ? threads : available_cores();
  torch::set_num_threads(count);
  static std::once_flag interop_sized;
  std::call_once(interop_sized, [count] { at::set_num_interop_threads(count); });
}

}  // namespace clipxai
