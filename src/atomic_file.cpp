#include "clipxai/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "clipxai/error.h"

namespace clipxai {
namespace {

std::string temporary_name_for(const std::string& path) {
  // Unique per process and per call, so concurrent writers (threads or shard processes sharing a
  // directory) never collide on the temporary.
  static std::atomic<unsigned> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

[[noreturn]] void fail(const std::string& path, const std::string& temporary, int error_number) {
  ::unlink(temporary.c_str());
  throw input_error("cannot write " + path + ": " + std::strerror(error_number));
}

// Flushes `temporary` (written and closed) to disk and renames it over `path`.
void commit(const std::string& path, const std::string& temporary) {
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, temporary, errno);
  if (::fsync(fd) != 0) {
    const int error_number = errno;
    ::close(fd);
    fail(path, temporary, error_number);
  }
  ::close(fd);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail(path, temporary, errno);
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  const std::string temporary = temporary_name_for(path);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw input_error("cannot write " + path + ": " + std::strerror(errno));
    try {
      write(out);
    } catch (...) {
      out.close();
      ::unlink(temporary.c_str());
      throw;
    }
    out.close();
    // A full disk shows as a failed stream; errno says why when the library set it.
    if (!out) fail(path, temporary, errno != 0 ? errno : EIO);
  }
  commit(path, temporary);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace clipxai
