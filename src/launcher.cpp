// The `clipxai` command: starts the engine's executable, `clipxai-bin` in the same folder, with
// the environment LibTorch and OpenBLAS must see from the start (passive_environment.h). This
// program links neither, so it starts at once, where the engine re-executing itself would load
// LibTorch's few hundred libraries twice. Arguments, standard streams and the
// exit status are the engine's own (exec replaces this process).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "passive_environment.h"

extern char** environ;

namespace {

constexpr int kExitInternal = 4;  // error.h's kExitInternal: the engine could not be started
constexpr char kEngine[] = "clipxai-bin";

}  // namespace

int main(int /*argc*/, char** argv) {
  char self[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0) {
    std::fprintf(stderr, "clipxai: cannot find its own executable (/proc/self/exe): %s\n",
                 std::strerror(errno));
    return kExitInternal;
  }
  std::string engine(self, static_cast<size_t>(length));
  engine = engine.substr(0, engine.rfind('/') + 1) + kEngine;
  char** environment = clipxai_passive_environment(environ);
  ::execve(engine.c_str(), argv, environment != nullptr ? environment : environ);
  std::fprintf(stderr, "clipxai: cannot start %s: %s\n", engine.c_str(), std::strerror(errno));
  return kExitInternal;
}
