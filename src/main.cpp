// The clipxai executable: parses the command line, runs the command, and turns every failure into
// a one-line message on stderr and the documented exit code (error.h).
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <c10/util/Exception.h>
#include <opencv2/core/utils/logger.hpp>

#include "clipxai/cli.h"
#include "clipxai/error.h"

namespace {

int fail(const std::string& message, int exit_code) {
  std::cerr << "clipxai: " << clipxai::message_line(message) << std::endl;
  return exit_code;
}

int run(int argc, char** argv) {
  // OpenCV's own warnings (a TIFF it cannot read) would break the one-line rule: the failure
  // reaches the user as clipxai's message.
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  // Link Grammar (--phrases, serve) reads UTF-8 text with the C library's multibyte functions and
  // would otherwise switch the character type itself (phrases.h); nothing else depends on it.
  std::setlocale(LC_CTYPE, "C.UTF-8");
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

}  // namespace

int main(int argc, char** argv) {
  const int exit_code = run(argc, argv);
  // Every file the command wrote is closed and standard output checked by now; what exit() would
  // still do is LibTorch's static teardown across its few hundred libraries (deregistering every
  // operator), time that changes nothing outside the process.
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(exit_code);
}
