// Every executable linking clipxai_lib runs with OMP_WAIT_POLICY=passive unless its environment
// sets OMP_WAIT_POLICY, and then also with OPENBLAS_THREAD_TIMEOUT=4 unless that is set
// (CMakeLists.txt pulls this file into each of them).
//
// Why: LibTorch runs its intra-op work on libgomp's OpenMP threads. libgomp's default lets an
// idle thread spin (GOMP_SPINCOUNT, 300000 pauses) after every parallel region before it sleeps;
// a forward pass runs hundreds of short regions with OpenBLAS's own threads in between, so the
// spinning takes the cores that the work needs. On the project's 2-core machine, ViT-B/32 explain
// with 2 threads took 3.8 s with the default policy and 0.18 s with passive waiting (0.35 s with
// one thread). OpenBLAS's idle threads likewise yield-spin for 2^28 cycles after each product
// before they sleep; between images they took the cores from the overlays being PNG-encoded
// (B/32, 16 photos x 8 prompts: writing 1.0 s -> 0.7 s, whole run 3.2 s -> 3.0 s with 4, i.e.
// 2^4 cycles, the least OpenBLAS accepts).
// How: libgomp reads the policy once, while it initialises, before main; and glibc's own
// initialisation drops environment changes made before it. So the executable's .preinit_array,
// which runs once the libraries are loaded but before any of them initialises, re-executes the
// program with the variable added (about 0.13 s here: loading and relocating the libraries
// again). If that fails, the program runs on with the default policy. Under valgrind, which does
// not follow the re-execution by default, set OMP_WAIT_POLICY first.
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

constexpr char kPolicy[] = "OMP_WAIT_POLICY=";
constexpr char kBlasTimeout[] = "OPENBLAS_THREAD_TIMEOUT=";

}  // namespace

extern "C" void clipxai_prefer_passive_openmp(int /*argc*/, char** argv, char** envp) {
  size_t count = 0;
  bool has_blas_timeout = false;
  for (; envp[count] != nullptr; ++count) {
    if (std::strncmp(envp[count], kPolicy, sizeof(kPolicy) - 1) == 0) return;
    has_blas_timeout |= std::strncmp(envp[count], kBlasTimeout, sizeof(kBlasTimeout) - 1) == 0;
  }
  // malloc works this early; the C++ runtime may not be initialised yet.
  auto** environment = static_cast<char**>(std::malloc((count + 3) * sizeof(char*)));
  if (environment == nullptr) return;
  std::memcpy(environment, envp, count * sizeof(char*));
  environment[count++] = const_cast<char*>("OMP_WAIT_POLICY=passive");
  if (!has_blas_timeout) environment[count++] = const_cast<char*>("OPENBLAS_THREAD_TIMEOUT=4");
  environment[count] = nullptr;
  execve("/proc/self/exe", argv, environment);
  std::free(environment);
}

__attribute__((used, section(".preinit_array"))) static void (*const kPreinit)(
    int, char**, char**) = clipxai_prefer_passive_openmp;
