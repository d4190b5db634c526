// The clipxai executable: parses the command line, runs the command, and turns every failure into
// a one-line message on stderr and the documented exit code (error.h).
#include <cctype>
#include <iostream>
#include <string>

#include <c10/util/Exception.h>

#include "clipxai/cli.h"
#include "clipxai/error.h"

namespace {

// Messages from libraries may span lines; the contract is one line per error.
std::string one_line(std::string message) {
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
    message.pop_back();
  }
  for (size_t at = message.find('\n'); at != std::string::npos; at = message.find('\n', at)) {
    message.replace(at, 1, "; ");
  }
  return message;
}

int fail(const std::string& message, int exit_code) {
  std::cerr << "clipxai: " << one_line(message) << std::endl;
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    clipxai::CommandLine command_line;
    try {
      command_line.app().parse(argc, argv);
    } catch (const CLI::ParseError& error) {
      // Prints help, the version, or a one-line message; --help and --version exit 0.
      return command_line.app().exit(error) == 0 ? clipxai::kExitOk : clipxai::kExitUsageOrInput;
    }
    const int exit_code = command_line.run();
    // A full disk or a closed standard output must not pass for success with a cut document.
    std::cout.flush();
    if (!std::cout) {
      return fail("cannot write to standard output (a full disk, or closed?)",
                  clipxai::kExitUsageOrInput);
    }
    return exit_code;
  } catch (const clipxai::Error& error) {
    return fail(error.what(), clipxai::exit_code_for(error.category()));
  } catch (const c10::Error& error) {
    return fail(std::string("internal error: ") + error.what_without_backtrace(),
                clipxai::kExitInternal);
  } catch (const std::exception& error) {
    return fail(std::string("internal error: ") + error.what(), clipxai::kExitInternal);
  }
}
