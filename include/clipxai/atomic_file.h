// Writing output files so that a reader (or a run resumed after kill -9) never sees a partial one.
//
// The contents go to a temporary file in the destination's directory, are flushed to disk, and
// the temporary is then renamed over the destination (rename is atomic within one file system).
// On any failure the temporary is removed and the destination is left as it was.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace clipxai {

// Throws Error(Input) naming `path` when the directory is missing or not writable, or the disk
// is full.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The same for contents too large to hold in memory: `write` streams them into the temporary.
// Exceptions from `write` propagate after the temporary is removed.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

}  // namespace clipxai
