// Every executable linking clipxai_lib runs with the passive environment (passive_environment.h)
// unless its environment sets OMP_WAIT_POLICY: CMakeLists.txt pulls this file into each of them.
// How: glibc's own initialisation drops environment changes made before it, and the libraries
// read the variables while they initialise, before main. So the executable's .preinit_array,
// which runs once the libraries are loaded but before any of them initialises, re-executes the
// program with the variables added: a second load of every library, which the `clipxai` launcher
// (launcher.cpp) spares its engine by starting it with them. If that fails, the program runs on
// with the default policy. Under valgrind, which does not follow the re-execution by default, set
// OMP_WAIT_POLICY first.
#include <unistd.h>

#include <cstdlib>

#include "passive_environment.h"

extern "C" void clipxai_prefer_passive_openmp(int /*argc*/, char** argv, char** envp) {
  char** environment = clipxai_passive_environment(envp);
  if (environment == nullptr) return;
  execve("/proc/self/exe", argv, environment);
  std::free(environment);
}

__attribute__((used, section(".preinit_array"))) static void (*const kPreinit)(
    int, char**, char**) = clipxai_prefer_passive_openmp;
