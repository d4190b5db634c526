// results.jsonl: the durable record of a batch run, and the run's JSON document built from it.
//
// Each line is one JSON object, written as the image finishes: a result object (as in the
// document's "results"; it has "prompts") or an error record (as in "errors": "image",
// "category", "message"). A line is appended with one write and fsync'd before append returns,
// after the files it names were written (atomically), so a run killed at any moment — kill -9
// included — leaves complete lines whose files are complete, plus at most one torn last line
// (bytes after the last newline). Resuming cuts that torn line off before appending. A later
// line for the same image replaces an earlier one (a resumed run retrying a failed image).
//
// The log keeps an index of its lines (image, kind, prompt texts, files named, byte range) but
// not the records themselves, so memory stays small for a log of 100,000 images: the document is
// written by reading the records back one at a time.
//
// One process at a time: the log is locked (flock) while open, and a second run on the same
// --out directory is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace clipxai {

// One complete line of a results.jsonl file as read back.
struct LogLine {
  size_t number = 0;    // 1-based
  uint64_t offset = 0;  // byte range of the line, newline excluded
  uint64_t length = 0;
  nlohmann::json record;
};

// The one reader of results.jsonl files. Visits each complete line (one ending in a newline) in
// order, blank lines skipped; a complete line that is not JSON is an Error(Input) "PATH line N:
// not a complete JSON object (...)". A last line without its newline is a record when it is a
// whole JSON value (a run killed just before writing the newline), and otherwise a torn line —
// what a killed run was appending — and never a record. Throws Error(Input) naming the file when
// it cannot be read ("no such file" when it is missing).
struct LogTail {
  uint64_t complete_bytes = 0;   // the size of the lines visited, blank ones included
  bool missing_newline = false;  // the last line visited has no newline after it
  size_t torn_line = 0;          // the torn line's number, or 0 when there is none
};
LogTail read_log_lines(const std::string& path, const std::function<void(const LogLine&)>& visit);

struct LogEntry {
  std::string image;
  bool is_result = false;            // false: an error record
  std::vector<std::string> prompts;  // a result's prompt texts, in order
  std::vector<std::string> files;    // the non-null "overlay" and "raw" paths of its prompts
  uint64_t offset = 0;               // byte range of the line, newline excluded
  uint64_t length = 0;
};

class ResultsLog {
 public:
  // Starts an empty log at `path`, replacing any previous one.
  static ResultsLog create(const std::string& path);
  // Continues the log at `path` (created when missing), dropping a torn last line.
  static ResultsLog resume(const std::string& path);
  // Errors of both: Error(Input) naming the file (and line) when it cannot be opened, read or
  // truncated, or a complete line is not a JSON object with a string "image"; Error(Usage) when
  // another process holds it.

  ResultsLog(ResultsLog&& other) noexcept;
  ResultsLog& operator=(ResultsLog&& other) noexcept;
  ResultsLog(const ResultsLog&) = delete;
  ResultsLog& operator=(const ResultsLog&) = delete;
  ~ResultsLog();

  // Appends `record` (an object with a string "image") as one line and syncs it to disk. On
  // failure (disk full) the file is cut back to its previous length and Error(Input) thrown.
  void append(const nlohmann::json& record);

  // The latest line for `image`, or nullptr.
  const LogEntry* latest(const std::string& image) const;
  const std::vector<LogEntry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }
  // True when resume() found and removed a torn last line.
  bool dropped_torn_line() const { return dropped_torn_line_; }

  // Reads back the record of one entry.
  nlohmann::json read_record(const LogEntry& entry) const;

 private:
  ResultsLog(std::string path, int fd);
  // Writes `bytes` at the end with one write and syncs them; on failure cuts the file back.
  void append_bytes(const std::string& bytes);
  void index_line(const nlohmann::json& record, uint64_t offset, uint64_t length, size_t line);

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool dropped_torn_line_ = false;
  std::vector<LogEntry> entries_;
  std::unordered_map<std::string, size_t> latest_;  // image -> index in entries_
};

// True when `entry` is a result for exactly `prompts` (same texts, same order) and every file it
// names exists (paths as recorded, so relative ones from the current directory): a resumed run
// skips such an image.
bool is_complete(const LogEntry& entry, const std::vector<std::string>& prompts);

// Writes the run's JSON document: `header`'s members plus "results" (the latest result of each of
// `images`, in that order) and "errors" (likewise for error records); images without a line are
// left out. The text is exactly nlohmann's dump(2) of that document held in memory (members in
// key order, records as read back from the log), followed by a newline, but only one record is
// in memory at a time.
void write_run_document(std::ostream& out, const nlohmann::json& header,
                        const std::vector<std::string>& images, const ResultsLog& log);

// How many of `images` have a latest record that is a result (`results`) or an error record.
size_t count_latest(const std::vector<std::string>& images, const ResultsLog& log, bool results);

// Calls `visit` with each of those records, in the order of `images`, one in memory at a time.
void visit_latest(const std::vector<std::string>& images, const ResultsLog& log, bool results,
                  const std::function<void(const nlohmann::json&)>& visit);

}  // namespace clipxai
