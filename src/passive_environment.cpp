#include "passive_environment.h"

#include <cstdlib>
#include <cstring>

namespace {

constexpr char kPolicy[] = "OMP_WAIT_POLICY=passive";

// Added each unless the environment sets that variable already.
constexpr const char* kDefaults[] = {
    "OPENBLAS_THREAD_TIMEOUT=4",
    "GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:"
    "glibc.malloc.trim_threshold=4294967296",
};
constexpr size_t kDefaultCount = sizeof(kDefaults) / sizeof(kDefaults[0]);

// Whether `entry` ("NAME=value") sets the variable that `assignment` ("NAME=...") names.
bool same_variable(const char* entry, const char* assignment) {
  const size_t name_length = std::strchr(assignment, '=') - assignment + 1;
  return std::strncmp(entry, assignment, name_length) == 0;
}

}  // namespace

extern "C" char** clipxai_passive_environment(char** envp) {
  size_t count = 0;
  bool already_set[kDefaultCount] = {};
  for (; envp[count] != nullptr; ++count) {
    if (same_variable(envp[count], kPolicy)) return nullptr;
    for (size_t i = 0; i < kDefaultCount; ++i) {
      already_set[i] |= same_variable(envp[count], kDefaults[i]);
    }
  }
  auto** environment =
      static_cast<char**>(std::malloc((count + 2 + kDefaultCount) * sizeof(char*)));
  if (environment == nullptr) return nullptr;
  std::memcpy(environment, envp, count * sizeof(char*));
  environment[count++] = const_cast<char*>(kPolicy);
  for (size_t i = 0; i < kDefaultCount; ++i) {
    if (!already_set[i]) environment[count++] = const_cast<char*>(kDefaults[i]);
  }
  environment[count] = nullptr;
  return environment;
}
