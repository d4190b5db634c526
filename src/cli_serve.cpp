// `clipxai serve [OPTIONS]`: loads the model once, then serves the demo page and its API
// (server.h) until SIGTERM or SIGINT, answering the requests in flight before exiting 0.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "clipxai/cli.h"
#include "clipxai/environment.h"
#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "clipxai/phrases.h"
#include "clipxai/server.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxExampleBytes = 16 << 20;

int stop_pipe[2] = {-1, -1};

void request_stop(int) {
  const char byte = 's';
  [[maybe_unused]] const ssize_t written = write(stop_pipe[1], &byte, 1);
}

// The example images a request may name: the folder's PNG and JPEG files, read now.
std::vector<ExampleImage> read_examples(const std::string& directory) {
  std::vector<ExampleImage> examples;
  if (directory.empty()) return examples;
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    throw usage_error("--examples " + directory + ": not a directory");
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    const std::string extension = entry.path().extension().string();
    if (extension != ".png" && extension != ".jpg" && extension != ".jpeg") continue;
    if (name.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
        std::string::npos) {
      continue;
    }
    examples.push_back(
        {name, read_input_file(entry.path().string(), "example image", kMaxExampleBytes)});
  }
  std::sort(examples.begin(), examples.end(),
            [](const ExampleImage& a, const ExampleImage& b) { return a.name < b.name; });
  return examples;
}

}  // namespace

CLI::App* add_serve_command(CLI::App& app, ServeOptions& options) {
  CLI::App* command = app.add_subcommand(
      "serve", "Serve the web demo and its JSON API: upload a photo, see what CLIP sees.");
  command->footer(R"(Open http://127.0.0.1:7860/ (the Explain and Entities tabs), or call the API:
  curl -F image=@photo.jpg -F prompt="a dog" -F prompt="a cat" http://127.0.0.1:7860/api/explain
  curl -F text="a girl and a boy at a desktop computer" http://127.0.0.1:7860/api/phrases
  curl http://127.0.0.1:7860/api/info

Explanations run --workers at a time; --queue more may wait, and requests beyond those are
answered 503 with Retry-After at once; --threads 0 (the default) divides the cores among the
workers. SIGTERM or SIGINT stops the listening, answers the requests in flight, and exits 0.
Binds 127.0.0.1 unless --host says otherwise.
)");
  add_model_options(*command, options.model);
  command->add_option("--host", options.host, "Address to listen on (0.0.0.0: every interface)")
      ->capture_default_str()
      ->type_name("ADDRESS");
  command->add_option("--port", options.port, "Port to listen on (0: any free port)")
      ->capture_default_str()
      ->type_name("PORT")
      ->check(number_in(0, 65535, true));
  ServerLimits& limits = options.limits;
  command->add_option("--workers", limits.workers, "Explanations computed at once")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(1, 256, true));
  command->add_option("--queue", limits.queue, "Explanations that may wait for a worker")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(0, 4096, true));
  command
      ->add_option("--max-upload-bytes", limits.max_upload_bytes,
                   "Refuse request bodies larger than this (413)")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(1, 1e12, true));
  add_max_pixels_option(*command, limits.max_pixels);
  command
      ->add_option("--max-prompts", limits.max_prompts,
                   "Prompts per request, a sentence's phrases included (413)")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(1, 1000, true));
  command
      ->add_option("--max-prompt-bytes", limits.max_prompt_bytes,
                   "Bytes per prompt, contrast text or sentence (413)")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(1, kMaxPhraseTextBytes, true));
  command
      ->add_option("--request-timeout", limits.request_seconds,
                   "Seconds a request's headers and body may take to arrive; slower clients are "
                   "dropped")
      ->capture_default_str()
      ->type_name("S")
      ->check(number_in(1, 3600, true));
  command
      ->add_option("--examples", options.examples,
                   "Folder of example images the page offers (default: the bundled examples/)")
      ->type_name("DIR");
  command->add_flag("--quiet", options.quiet, "No line on standard error per request");
  add_runtime_options(*command, options.threads, options.device);
  return command;
}

int run_serve(const ServeOptions& options) {
  // glibc gives threads that contend for malloc arenas of their own, up to 8 per core, and keeps
  // what each frees; across the connection threads that grows the resident memory request after
  // request. Two arenas keep it flat (measured in the README's load numbers) at no visible cost.
  mallopt(M_ARENA_MAX, 2);
  // LibTorch's pools are sized before any server thread starts. Each explanation runs on that
  // many threads, so by default the workers share the cores rather than each taking them all.
  set_thread_count(options.threads > 0 ? options.threads
                                       : std::max(1, available_cores() / options.limits.workers));
  const ClipModel model = [&] {
    ClipModel loaded = load_model(options.model);
    loaded.to(parse_device(options.device));
    return loaded;
  }();
  const Tokenizer tokenizer = load_tokenizer(options.model.vocab, model.embedded_vocabulary(),
                                             model.path(), model.config().vocab_size);
  const PhraseParser parser;

  ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.limits = options.limits;
  server_options.examples =
      read_examples(options.examples.empty() ? bundled_examples_directory() : options.examples);
  server_options.info = info_json(model, tokenizer.source());
  std::mutex log_mutex;
  if (!options.quiet) {
    server_options.log = [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mutex);
      std::cerr << message_line(line) << std::endl;
    };
  }

  DemoServer server(model, tokenizer, parser, std::move(server_options));
  const int port = server.bind();
  std::cerr << "clipxai: serving " << model.path() << " on http://" << options.host << ":" << port
            << "/ (" << options.limits.workers << " worker"
            << (options.limits.workers == 1 ? "" : "s") << ")" << std::endl;
  // SIGTERM and SIGINT may land on any thread (OpenBLAS starts its own before main), so their
  // handler only writes a byte to a pipe; a thread waiting on the pipe stops the server as
  // ordinary code.
  if (pipe(stop_pipe) != 0) throw Error(ErrorCategory::Internal, "cannot create a pipe");
  struct sigaction action {};
  action.sa_handler = request_stop;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::thread waiter([&] {
    char byte;
    while (read(stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    server.stop();
  });
  server.run();
  request_stop(0);  // ends the waiter when the server stopped on its own
  waiter.join();
  std::cerr << "clipxai: stopped" << std::endl;
  return kExitOk;
}

}  // namespace clipxai
