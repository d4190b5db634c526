// `clipxai serve`: the web demo and its JSON API, over one loaded model, on cpp-httplib.
//
// Routes (every answer but the page's assets is JSON; errors are {"error", "category"}):
//   GET  /                 the demo page (Explain and Entities tabs); its script and style are
//                          embedded in the binary (web/), nothing is fetched from elsewhere
//   GET  /examples/NAME    one of the bundled example images, by name from a fixed list
//   GET  /api/info         the model's facts, as `clipxai info --json` gives them, plus
//                          "examples" (their names), "colormaps" and "limits"
//   GET  /healthz          {"status": "ok"}
//   POST /api/explain      multipart form: `image` (a file) or `example` (a name), `prompt`
//                          (repeatable), and the options of `clipxai explain` by their long
//                          names with '_' for '-': method, start_layer, start_layer_text, param
//                          (repeatable NAME=VALUE), contrast, crop, alpha, colormap, phrases
//                          (a sentence: it and its noun phrases become prompts too), plus
//                          `layers` (true: add the page's compositing layers, below).
//                          Answer: the CLI's result object for the image (report.h) with each
//                          prompt's "overlay" a data:image/png;base64 URL. With layers: each
//                          prompt's "heatmap" (the overlay at alpha 1) and the image's
//                          "backdrop" (at alpha 0), so that the backdrop under the heatmap at
//                          opacity a is the overlay at alpha a.
//   POST /api/phrases      field `text` (multipart or urlencoded) ->
//                          {"phrases": [{"text", "start", "end"}]}, code point offsets
//
// Statuses: 400 a field missing, unknown or malformed (Error(Usage)); 413 over a limit (bytes,
// pixels from the header, prompts, prompt length); 415 an upload that is not JPEG, PNG, WebP,
// BMP or TIFF; 422 content that cannot be used (a damaged image, text that is not UTF-8 or has
// no tokens: Error(Input)); 503 with Retry-After when every worker is busy and the queue is
// full; 500 Error(Model) or Error(Internal).
//
// Explanations run `workers` at a time; at most `queue` more wait, later ones get 503 at once.
// Connections are served by 2 * (workers + queue) + 4 threads; as many more may wait for one,
// and a connection beyond those is answered 503 at once.
// A request (its headers and body) must arrive within `request_seconds`, so a client that
// trickles bytes is dropped; each read and write waits at most `io_seconds`. Requests never
// name files on the server. stop() ends the listening; requests in flight are answered first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "clipxai/engine.h"
#include "clipxai/error.h"
#include "clipxai/image.h"
#include "clipxai/model.h"
#include "clipxai/phrases.h"
#include "clipxai/render.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct ServerLimits {
  size_t max_upload_bytes = 20 << 20;  // a request's whole body
  int64_t max_pixels = 40'000'000;     // an image's width x height, read from its header
  size_t max_prompts = 16;             // prompts of a request, a sentence's phrases included
  size_t max_prompt_bytes = 300;       // each prompt, contrast text and sentence
  int workers = 1;                     // explanations at once
  int queue = 8;                       // explanations waiting for a worker
  int request_seconds = 20;            // to receive a request's headers and body
  int io_seconds = 10;                 // each read or write
};

// A bundled example image: requests name it; its bytes are read once, at start-up.
struct ExampleImage {
  std::string name;  // e.g. "girl_boy_desktop.png"
  std::string bytes;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 7860;  // 0: any free port (bind() says which)
  ServerLimits limits;
  std::vector<ExampleImage> examples;
  nlohmann::json info;  // GET /api/info's model facts
  // One line per request answered ("POST /api/explain 200 153 ms"); null: none.
  std::function<void(const std::string&)> log;
};

// One field of a submitted form.
struct FormField {
  std::string name;
  std::string content;
  std::string filename;  // for a file; empty otherwise
};

// What a POST /api/explain form asks for, checked.
struct ExplainRequest {
  std::string image_name;  // the upload's file name or the example's name
  std::string image_bytes;
  std::vector<std::string> prompts;            // the prompt fields, then the sentence's
  std::vector<std::optional<TextSpan>> spans;  // per prompt: its place in the sentence
  ExplainSettings settings;
  OverlayStyle overlay;
  bool layers = false;
};

// An Error with the HTTP status it is answered with (the table above).
class RequestError : public Error {
 public:
  RequestError(int status, ErrorCategory category, const std::string& message)
      : Error(category, message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The status an error is answered with: a RequestError's own, else by category.
int http_status(const Error& error);

// Reads the form's fields into a request. Throws RequestError: 400 for a missing, repeated,
// unknown or malformed field, 413 for too many or too long prompts or too many bytes. `parser`
// finds the sentence's phrases (null: `phrases` is refused). The image is not decoded here.
ExplainRequest parse_explain_form(const std::vector<FormField>& fields, const ServerLimits& limits,
                                  const std::vector<ExampleImage>& examples,
                                  const PhraseParser* parser);

// The answer to a request, as /api/explain gives it. Throws RequestError (413 pixels, 415 not an
// image) and the library's Errors.
nlohmann::json explain_request(const ClipModel& model, const Tokenizer& tokenizer,
                               const ExplainRequest& request, const ServerLimits& limits);

class DemoServer {
 public:
  // `model`, `tokenizer` and `parser` must outlive the server.
  DemoServer(const ClipModel& model, const Tokenizer& tokenizer, const PhraseParser& parser,
             ServerOptions options);
  ~DemoServer();
  DemoServer(const DemoServer&) = delete;
  DemoServer& operator=(const DemoServer&) = delete;

  // Binds the address; returns the port. Throws Error(Usage) when it cannot be bound.
  int bind();
  // Serves until stop(); returns once requests in flight have been answered.
  void run();
  // From any thread, a signal-waiting one included.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipxai
