#include "clipxai/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "clipxai/error.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

// In the destination's directory (rename stays within one file system), unique per process and
// per call, so concurrent writers (threads or shard processes sharing a directory) never collide;
// short, so a destination name at the 255-byte limit still has one; hidden, so a folder walk
// (batch.h) skips it.
std::string temporary_name_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return (path.parent_path() /
          (".clipxai-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".tmp"))
      .string();
}

[[noreturn]] void fail(const std::string& path, const std::string& temporary, int error_number) {
  ::unlink(temporary.c_str());
  throw input_error("cannot write " + path + ": " + std::strerror(error_number));
}

// Flushes `temporary` (written and closed) to disk and renames it over `target`, where writing
// `path` leads.
void commit(const std::string& path, const std::string& target, const std::string& temporary) {
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, temporary, errno);
  if (::fsync(fd) != 0) {
    const int error_number = errno;
    ::close(fd);
    fail(path, temporary, error_number);
  }
  ::close(fd);
  if (std::rename(temporary.c_str(), target.c_str()) != 0) fail(path, temporary, errno);
}

// `path` with a symbolic link in its last component followed, hop by hop, to the location it
// names, which need not exist (a dangling link is written through to its target).
fs::path link_target(const std::string& path) {
  fs::path current(path);
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code error;
    if (!fs::is_symlink(fs::symlink_status(current, error))) return current;
    const fs::path next = fs::read_symlink(current, error);
    if (error) throw input_error("cannot write " + path + ": " + error.message());
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  throw input_error("cannot write " + path + ": " + std::strerror(ELOOP));
}

// Writes in place into a device or FIFO, as a shell's `>` does (O_TRUNC means nothing there).
void write_through(const std::string& path, const fs::path& target,
                   const std::function<void(std::ostream&)>& write) {
  std::ofstream out(target, std::ios::binary);
  if (!out) throw input_error("cannot write " + path + ": " + std::strerror(errno));
  write(out);
  out.close();
  if (!out) {
    throw input_error("cannot write " + path + ": " + std::strerror(errno != 0 ? errno : EIO));
  }
}

struct Location {
  std::optional<std::pair<dev_t, ino_t>> id;  // when it exists
  bool is_directory = false;
  fs::path resolved;  // absolute, symbolic links resolved as far as the path exists
};

Location locate(const std::string& path) {
  Location location;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    location.id = std::pair<dev_t, ino_t>(info.st_dev, info.st_ino);
    location.is_directory = S_ISDIR(info.st_mode);
  }
  std::error_code error;
  location.resolved = fs::weakly_canonical(path, error);
  if (error) location.resolved = fs::absolute(path, error).lexically_normal();
  return location;
}

bool is_within(const fs::path& inner, const fs::path& outer) {
  return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  const fs::path target = link_target(path);
  std::error_code error;
  const fs::file_status status = fs::status(target, error);
  if (fs::is_directory(status)) throw input_error("cannot write " + path + ": is a directory");
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    write_through(path, target, write);
    return;
  }
  const std::string temporary = temporary_name_for(target);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      // errno is about the temporary, which the user never named: say so.
      const fs::path directory = target.parent_path().empty() ? "." : target.parent_path();
      throw input_error("cannot write " + path + ": cannot create a file in " + directory.string() +
                        " (" + std::strerror(errno) + ")");
    }
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
  commit(path, target.string(), temporary);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

void refuse_overwriting(const std::string& option, const std::string& output,
                        const std::vector<ProtectedFile>& files) {
  const Location written = locate(link_target(output).string());
  std::error_code error;
  const fs::file_status status = fs::status(output, error);
  // Devices and FIFOs are written through: nothing is replaced.
  if (fs::exists(status) && !fs::is_regular_file(status) && !fs::is_directory(status)) return;
  for (const ProtectedFile& file : files) {
    if (file.path.empty()) continue;
    const Location protected_location = locate(file.path);
    const bool same = (written.id && written.id == protected_location.id) ||
                      written.resolved == protected_location.resolved;
    if (same || (protected_location.is_directory &&
                 is_within(written.resolved, protected_location.resolved))) {
      throw usage_error(option + " " + output + ": " + (same ? "is " : "is inside ") + file.role +
                        " (" + file.path + "); write it somewhere else");
    }
  }
}

}  // namespace clipxai
