#include "clipxai/results_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "clipxai/output.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string system_message() { return std::strerror(errno); }

// Opens and locks the log; `path` is truncated only once the lock shows no other run uses it.
int open_locked(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw input_error(path + ": cannot open the results log: " + system_message());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const bool held = errno == EWOULDBLOCK;
    const std::string reason = system_message();
    ::close(fd);
    if (held) {
      throw usage_error(path +
                        ": another clipxai run is writing this results log; give each "
                        "run its own --out directory");
    }
    throw input_error(path + ": cannot lock the results log: " + reason);
  }
  return fd;
}

void truncate_to(int fd, uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    throw input_error(path + ": cannot truncate the results log: " + system_message());
  }
}

// `text` (one dump(2) of a value) indented by `depth` further levels, as dump(2) nests it.
void write_indented(std::ostream& out, const std::string& text, int depth) {
  const std::string indent(2 * depth, ' ');
  size_t start = 0;
  while (true) {
    const size_t end = text.find('\n', start);
    out << (start == 0 ? "" : indent) << text.substr(start, end - start);
    if (end == std::string::npos) break;
    out << '\n';
    start = end + 1;
  }
}

// The latest entry for `image` when it is a result (`results`) or an error record, else nullptr.
const LogEntry* latest_of_kind(const ResultsLog& log, const std::string& image, bool results) {
  const LogEntry* entry = log.latest(image);
  return entry != nullptr && entry->is_result == results ? entry : nullptr;
}

}  // namespace

LogTail read_log_lines(const std::string& path, const std::function<void(const LogLine&)>& visit) {
  if (const auto problem = input_file_problem(path)) throw input_error(path + ": " + *problem);
  std::ifstream file(path, std::ios::binary);
  if (!file) throw input_error(path + ": cannot read the file");
  LogTail tail;
  std::string text;
  for (size_t number = 1; std::getline(file, text); ++number) {
    const bool last_without_newline = file.eof();
    LogLine line;
    line.number = number;
    line.offset = tail.complete_bytes;
    line.length = text.size();
    if (text.find_first_not_of(" \t\r") == std::string::npos) {
      if (last_without_newline) break;
      tail.complete_bytes += text.size() + 1;
      continue;
    }
    if (const auto why = parse_json_text(text, line.record)) {
      if (last_without_newline) {
        tail.torn_line = number;
        break;
      }
      throw input_error(path + " line " + std::to_string(number) + ": not valid JSON (" + *why +
                        "; a torn or partially written line?)");
    }
    tail.complete_bytes += text.size() + (last_without_newline ? 0 : 1);
    tail.missing_newline = last_without_newline;
    visit(line);
  }
  if (file.bad()) throw input_error(path + ": cannot read the file");
  return tail;
}

size_t count_latest(const std::vector<std::string>& images, const ResultsLog& log, bool results) {
  return static_cast<size_t>(std::count_if(images.begin(), images.end(), [&](const auto& image) {
    return latest_of_kind(log, image, results) != nullptr;
  }));
}

void visit_latest(const std::vector<std::string>& images, const ResultsLog& log, bool results,
                  const std::function<void(const json&)>& visit) {
  for (const std::string& image : images) {
    if (const LogEntry* entry = latest_of_kind(log, image, results)) visit(log.read_record(*entry));
  }
}

ResultsLog::ResultsLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

ResultsLog::ResultsLog(ResultsLog&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      dropped_torn_line_(other.dropped_torn_line_),
      entries_(std::move(other.entries_)),
      latest_(std::move(other.latest_)) {}

ResultsLog& ResultsLog::operator=(ResultsLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    dropped_torn_line_ = other.dropped_torn_line_;
    entries_ = std::move(other.entries_);
    latest_ = std::move(other.latest_);
  }
  return *this;
}

ResultsLog::~ResultsLog() {
  if (fd_ >= 0) ::close(fd_);
}

ResultsLog ResultsLog::create(const std::string& path) {
  ResultsLog log(path, open_locked(path));
  truncate_to(log.fd_, 0, path);
  return log;
}

ResultsLog ResultsLog::resume(const std::string& path) {
  ResultsLog log(path, open_locked(path));
  const LogTail tail = read_log_lines(path, [&](const LogLine& line) {
    log.index_line(line.record, line.offset, line.length, line.number);
  });
  log.size_ = tail.complete_bytes;
  log.dropped_torn_line_ = tail.torn_line > 0;
  if (log.dropped_torn_line_) truncate_to(log.fd_, log.size_, path);
  if (tail.missing_newline) log.append_bytes("\n");
  return log;
}

// `line` numbers the line for messages when reading an existing log.
void ResultsLog::index_line(const json& record, uint64_t offset, uint64_t length, size_t line) {
  const auto image = record.is_object() ? record.find("image") : record.end();
  if (!record.is_object() || image == record.end() || !image->is_string()) {
    throw input_error(path_ + " line " + std::to_string(line) +
                      ": expected a JSON object with a string \"image\"");
  }
  LogEntry entry;
  entry.image = image->get<std::string>();
  entry.offset = offset;
  entry.length = length;
  const auto prompts = record.find("prompts");
  entry.is_result = prompts != record.end();
  if (entry.is_result && prompts->is_array()) {
    for (const json& prompt : *prompts) {
      if (!prompt.is_object()) continue;
      entry.prompts.push_back(prompt.value("text", std::string()));
      for (const char* file : {"overlay", "raw"}) {
        const auto path = prompt.find(file);
        if (path != prompt.end() && path->is_string()) entry.files.push_back(*path);
      }
    }
  }
  latest_[entry.image] = entries_.size();
  entries_.push_back(std::move(entry));
}

void ResultsLog::append(const json& record) {
  if (!record.is_object() || !record.contains("image") || !record["image"].is_string()) {
    throw Error(ErrorCategory::Internal, "results log records need a string \"image\"");
  }
  const std::string line = json_text(record, -1) + "\n";
  const uint64_t offset = size_;
  append_bytes(line);
  index_line(record, offset, line.size() - 1, 0);
}

void ResultsLog::append_bytes(const std::string& bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = system_message();
      ::ftruncate(fd_, static_cast<off_t>(size_));  // best effort: no torn line in the middle
      throw input_error(path_ + ": cannot append to the results log: " + reason);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) {
    throw input_error(path_ + ": cannot sync the results log: " + system_message());
  }
  size_ += bytes.size();
}

const LogEntry* ResultsLog::latest(const std::string& image) const {
  const auto found = latest_.find(image);
  return found == latest_.end() ? nullptr : &entries_[found->second];
}

json ResultsLog::read_record(const LogEntry& entry) const {
  std::ifstream file(path_, std::ios::binary);
  std::string line(entry.length, '\0');
  file.seekg(static_cast<std::streamoff>(entry.offset));
  file.read(line.data(), static_cast<std::streamsize>(line.size()));
  if (!file) throw input_error(path_ + ": cannot read back the record of " + entry.image);
  return parse_json_input(line, path_);
}

bool is_complete(const LogEntry& entry, const std::vector<std::string>& prompts) {
  if (!entry.is_result || entry.prompts != prompts) return false;
  for (const std::string& file : entry.files) {
    std::error_code error;
    if (!fs::is_regular_file(file, error)) return false;
  }
  return true;
}

void write_run_document(std::ostream& out, const json& header,
                        const std::vector<std::string>& images, const ResultsLog& log) {
  json members = header;
  members["results"] = json::array();
  members["errors"] = json::array();
  out << "{\n";
  bool first_member = true;
  for (const auto& [name, value] : members.items()) {
    out << (first_member ? "" : ",\n") << "  " << json_text(name, -1) << ": ";
    first_member = false;
    const bool is_results = name == "results";
    if (!is_results && name != "errors") {
      write_indented(out, json_text(value), 1);
      continue;
    }
    bool first_record = true;
    visit_latest(images, log, is_results, [&](const json& record) {
      out << (first_record ? "[\n    " : ",\n    ");
      first_record = false;
      write_indented(out, json_text(record), 2);
    });
    out << (first_record ? "[]" : "\n  ]");
  }
  out << "\n}\n";
}

}  // namespace clipxai
