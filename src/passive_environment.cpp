#include "passive_environment.h"

#include <cstdlib>
#include <cstring>

namespace {

constexpr char kPolicy[] = "OMP_WAIT_POLICY=";
constexpr char kBlasTimeout[] = "OPENBLAS_THREAD_TIMEOUT=";

}  // namespace

extern "C" char** clipxai_passive_environment(char** envp) {
  size_t count = 0;
  bool has_blas_timeout = false;
  for (; envp[count] != nullptr; ++count) {
    if (std::strncmp(envp[count], kPolicy, sizeof(kPolicy) - 1) == 0) return nullptr;
    has_blas_timeout |= std::strncmp(envp[count], kBlasTimeout, sizeof(kBlasTimeout) - 1) == 0;
  }
  auto** environment = static_cast<char**>(std::malloc((count + 3) * sizeof(char*)));
  if (environment == nullptr) return nullptr;
  std::memcpy(environment, envp, count * sizeof(char*));
  environment[count++] = const_cast<char*>("OMP_WAIT_POLICY=passive");
  if (!has_blas_timeout) environment[count++] = const_cast<char*>("OPENBLAS_THREAD_TIMEOUT=4");
  environment[count] = nullptr;
  return environment;
}
