#include "clipxai/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string temporary = temporary_name_for(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw input_error("cannot write " + path + ": " + std::strerror(errno));
  const char* data = bytes.data();
  size_t remaining = bytes.size();
  while (remaining > 0) {
    const ssize_t written = ::write(fd, data, remaining);
    if (written < 0) {
      if (errno == EINTR) continue;
      const int error_number = errno;
      ::close(fd);
      fail(path, temporary, error_number);
    }
    data += written;
    remaining -= static_cast<size_t>(written);
  }
  if (::fsync(fd) != 0) {
    const int error_number = errno;
    ::close(fd);
    fail(path, temporary, error_number);
  }
  if (::close(fd) != 0) fail(path, temporary, errno);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail(path, temporary, errno);
}

}  // namespace clipxai
