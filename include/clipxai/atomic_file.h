// Writing output files so that a reader (or a run resumed after kill -9) never sees a partial one.
//
// The contents go to a temporary file in the destination's directory, are flushed to disk, and
// the temporary is then renamed over the destination (rename is atomic within one file system).
// On any failure the temporary is removed and the destination is left as it was.
//
// The destination is where the path leads: a symbolic link is followed (the file it points to is
// replaced, the link stays), and a destination that exists but is not a regular file — a device
// such as /dev/null or /dev/stdout, a FIFO — is written through, in place, as a shell's `>` would,
// never replaced by a regular file. A directory is an error.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace clipxai {

// Throws Error(Input) naming `path` when the directory is missing or not writable, or the disk
// is full.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The same for contents too large to hold in memory: `write` streams them into the temporary.
// Exceptions from `write` propagate after the temporary is removed.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

// A file a command reads or writes besides an output, and what it is to the command ("the input
// image", "the results log").
struct ProtectedFile {
  std::string path;
  std::string role;
};

// Throws Error(Usage) "OPTION OUTPUT: is ROLE (PATH); ..." when writing `output` would replace
// one of `files`: the same file (device and inode) or the same location once symbolic links are
// resolved, whether or not it exists yet, or a location inside one that is a directory. Called
// before any work, so a mistyped --json cannot destroy an input or the run's own log.
void refuse_overwriting(const std::string& option, const std::string& output,
                        const std::vector<ProtectedFile>& files);

}  // namespace clipxai
