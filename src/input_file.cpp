#include "clipxai/input_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace clipxai {

std::optional<std::string> input_file_problem(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return error && error != std::errc::no_such_file_or_directory
               ? "cannot be looked at (" + error.message() + ")"
               : std::string("does not exist");
  }
  if (std::filesystem::is_directory(status)) return "is a directory";
  if (!std::filesystem::is_regular_file(status)) {
    return "is not a regular file (a FIFO, socket or device)";
  }
  return std::nullopt;
}

std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes,
                            ErrorCategory category) {
  const auto fail = [&](const std::string& why) {
    return Error(category, path + ": cannot read the " + what + ": " + why);
  };
  if (const auto problem = input_file_problem(path)) throw fail(*problem);
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(path, error);
  if (!error && size > max_bytes) {
    throw fail("it is " + std::to_string(size) + " bytes, over the limit of " +
               std::to_string(max_bytes));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw fail(std::strerror(errno));
  // Read in pieces, bounded as it goes: some files (those of /proc) do not state their size.
  std::string text;
  std::string buffer(1 << 16, '\0');
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    text.append(buffer.data(), static_cast<size_t>(file.gcount()));
    if (text.size() > max_bytes) {
      throw fail("it is over the limit of " + std::to_string(max_bytes) + " bytes");
    }
  }
  if (file.bad()) throw fail(std::string("read error (") + std::strerror(errno) + ")");
  return text;
}

std::optional<std::string> parse_json_text(std::string_view text, nlohmann::json& value) {
  struct TooDeep {};
  const auto bound_depth = [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    value = nlohmann::json::parse(text, bound_depth);
  } catch (const TooDeep&) {
    return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  } catch (const nlohmann::json::exception& e) {
    // Parse errors, and out_of_range for numbers beyond double's range.
    return std::string(e.what());
  }
  return std::nullopt;
}

nlohmann::json parse_json_input(std::string_view text, const std::string& where,
                                ErrorCategory category) {
  nlohmann::json value;
  if (const auto why = parse_json_text(text, value)) {
    throw Error(category, where + ": not valid JSON (" + *why + ")");
  }
  return value;
}

}  // namespace clipxai
