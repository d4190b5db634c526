// The demo server (server.h): the form's reading, one explanation, admission to the workers, and
// cpp-httplib underneath with a per-request deadline.
#include "clipxai/server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "clipxai/cli.h"
#include "clipxai/output.h"
#include "clipxai/report.h"
#include "web_assets.h"

namespace clipxai {
namespace {

using Clock = std::chrono::steady_clock;

// When the request a connection thread is answering arrived, for its log line.
thread_local Clock::time_point request_started;

std::string base64(const std::string& bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const auto byte = [&](size_t k) {
      return k < bytes.size() ? static_cast<unsigned char>(bytes[k]) : 0u;
    };
    const unsigned triple = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    text += kDigits[triple >> 18 & 63];
    text += kDigits[triple >> 12 & 63];
    text += i + 1 < bytes.size() ? kDigits[triple >> 6 & 63] : '=';
    text += i + 2 < bytes.size() ? kDigits[triple & 63] : '=';
  }
  return text;
}

std::string png_data_url(const cv::Mat& rgb) {
  return "data:image/png;base64," + base64(encode_png(rgb));
}

RequestError bad_field(const std::string& message) { return {400, ErrorCategory::Usage, message}; }

RequestError over_limit(const std::string& message) { return {413, ErrorCategory::Input, message}; }

// A form value checked by one of the command line's validators (cli.h), which may rewrite it.
std::string validated(const std::string& field, std::string value, const CLI::Validator& check) {
  const std::string problem = check(value);
  if (!problem.empty()) throw bad_field("field '" + field + "': " + problem);
  return value;
}

bool boolean_field(const std::string& field, const std::string& value) {
  if (value == "true" || value == "1" || value == "on") return true;
  if (value == "false" || value == "0" || value == "off" || value.empty()) return false;
  throw bad_field("field '" + field + "': '" + value + "' is not true or false");
}

void check_text_length(const std::string& field, const std::string& text,
                       const ServerLimits& limits) {
  if (text.size() > limits.max_prompt_bytes) {
    throw over_limit("field '" + field + "' is " + std::to_string(text.size()) +
                     " bytes, over the limit of " + std::to_string(limits.max_prompt_bytes) +
                     " (--max-prompt-bytes)");
  }
}

nlohmann::json error_body(const Error& error) {
  return {{"error", message_line(error.what())}, {"category", to_string(error.category())}};
}

// Explanations in progress and waiting: `workers` run at once, `queue` more wait their turn,
// and beyond that a request is turned away at once.
class WorkerSlots {
 public:
  WorkerSlots(int workers, int queue) : workers_(workers), queue_(queue) {}

  // False when every worker is busy and the queue is full.
  bool enter() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (running_ >= workers_) {
      if (waiting_ >= queue_) return false;
      ++waiting_;
      turn_.wait(lock, [&] { return running_ < workers_; });
      --waiting_;
    }
    ++running_;
    return true;
  }

  void leave(Clock::duration took) {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    const double seconds = std::chrono::duration<double>(took).count();
    mean_seconds_ = mean_seconds_ <= 0 ? seconds : 0.8 * mean_seconds_ + 0.2 * seconds;
    turn_.notify_one();
  }

  // When to come back: about the time the queue ahead takes to drain.
  int retry_after_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    const double drain = mean_seconds_ * (queue_ + workers_) / std::max(1, workers_);
    return static_cast<int>(std::clamp(std::ceil(drain), 1.0, 60.0));
  }

 private:
  const int workers_;
  const int queue_;
  mutable std::mutex mutex_;
  std::condition_variable turn_;
  int running_ = 0;
  int waiting_ = 0;
  double mean_seconds_ = 0;
};

// A connection's stream whose reads give up once the request's deadline has passed: a client
// sending a byte a second is cut off, not served for hours.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(int socket, int io_seconds) : socket_(socket), io_seconds_(io_seconds) {}

  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  bool is_readable() const override { return wait_for(POLLIN); }
  bool is_writable() const override { return wait_for(POLLOUT); }

  ssize_t read(char* buffer, size_t size) override {
    if (!wait_for(POLLIN)) return -1;
    ssize_t got;
    do {
      got = ::recv(socket_, buffer, size, 0);
    } while (got < 0 && errno == EINTR);
    return got;
  }

  ssize_t write(const char* data, size_t size) override {
    if (!wait_for(POLLOUT)) return -1;
    ssize_t sent;
    do {
      sent = ::send(socket_, data, size, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(::getsockname, ip, port);
  }
  socket_t socket() const override { return socket_; }

  // Whether a next request begins within `timeout` (keep-alive), looking every 100 ms whether
  // the server is stopping.
  bool next_request_within(std::chrono::seconds timeout, const std::atomic<bool>& stopping) const {
    const auto until = Clock::now() + timeout;
    while (!stopping && Clock::now() < until) {
      pollfd poller{socket_, POLLIN, 0};
      const int ready = ::poll(&poller, 1, 100);
      if (ready > 0) {
        char byte;
        return ::recv(socket_, &byte, 1, MSG_PEEK) > 0;
      }
      if (ready < 0 && errno != EINTR) return false;
    }
    return false;
  }

 private:
  // Reads wait until the deadline, writes (the answer, after the work) only `io_seconds`.
  bool wait_for(short events) const {
    auto limit = Clock::now() + std::chrono::seconds(io_seconds_);
    if (events == POLLIN) limit = std::min(limit, deadline_);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - Clock::now());
      if (left.count() <= 0) return false;
      pollfd poller{socket_, events, 0};
      const int ready = ::poll(&poller, 1, static_cast<int>(left.count()));
      if (ready > 0) return (poller.revents & (events | POLLHUP | POLLERR)) != 0;
      if (ready < 0 && errno != EINTR) return false;
    }
  }

  template <typename Lookup>
  void address(Lookup lookup, std::string& ip, int& port) const {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    ip.clear();
    port = 0;
    if (lookup(socket_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return;
    char host[NI_MAXHOST];
    char service[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&storage), length, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      port = std::atoi(service);
    }
  }

  int socket_;
  int io_seconds_;
  Clock::time_point deadline_ = Clock::now();
};

// Set on the thread that is to turn a connection away rather than serve it.
thread_local bool refuse_connection = false;

// The connections' threads. A connection waits for a free thread in a queue of at most as many
// connections as there are threads; beyond that it is answered 503 at once on the accepting
// thread, so neither waiting connections nor memory grow without bound.
class ConnectionPool : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(size_t threads) : limit_(threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> connection) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (waiting_.size() < limit_) {
        waiting_.push_back(std::move(connection));
        ready_.notify_one();
        return;
      }
    }
    refuse_connection = true;
    connection();
    refuse_connection = false;
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  // Whether connections are waiting for a thread: a kept-alive connection then closes after
  // its request, letting the next one in.
  bool busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !waiting_.empty();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> connection;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) return;
        connection = std::move(waiting_.front());
        waiting_.pop_front();
      }
      connection();
    }
  }

  const size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> waiting_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// cpp-httplib's server with its connection loop replaced by one that gives each request a
// deadline, ends keep-alive waits as soon as the server stops or other connections wait, and
// turns connections away when the pool is full.
class DeadlineServer : public httplib::Server {
 public:
  explicit DeadlineServer(const ServerLimits& limits) : limits_(limits) {
    // Room for every explanation running or waiting, and as many connections again answering
    // cheap requests (and 503s) meanwhile.
    const auto threads = static_cast<size_t>(2 * (limits.workers + limits.queue) + 4);
    new_task_queue = [this, threads] {
      pool_ = new ConnectionPool(threads);
      return pool_;
    };
  }

  void stop_serving() {
    stopping_ = true;
    stop();
  }

  // cpp-httplib listens with a backlog of 5: a burst of connections before the accepting loop
  // drains them would have its SYNs dropped and retried a second or more later.
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

 private:
  static constexpr int kRequestsPerConnection = 100;
  static constexpr auto kKeepAlive = std::chrono::seconds(5);

  bool process_and_close_socket(socket_t socket) override {
    DeadlineStream stream(socket, limits_.io_seconds);
    if (refuse_connection) {
      static const std::string kBody =
          R"({"category":"internal","error":"too many connections; try again shortly"})";
      const std::string answer =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
          std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
      stream.write(answer.data(), answer.size());
    } else {
      bool closed = false;
      for (int served = 0; !closed && served < kRequestsPerConnection; ++served) {
        if (served > 0 && !stream.next_request_within(kKeepAlive, stopping_)) break;
        stream.set_deadline(Clock::now() + std::chrono::seconds(limits_.request_seconds));
        const bool last = stopping_ || pool_->busy() || served + 1 == kRequestsPerConnection;
        if (!process_request(stream, last, closed, nullptr)) break;
      }
    }
    ::shutdown(socket, SHUT_RDWR);
    ::close(socket);
    return true;
  }

  const ServerLimits limits_;
  std::atomic<bool> stopping_{false};
  ConnectionPool* pool_ = nullptr;  // owned by httplib::Server's listening loop
};

std::vector<FormField> form_fields(const httplib::Request& request) {
  std::vector<FormField> fields;
  for (const auto& [name, file] : request.files) {
    fields.push_back({name, file.content, file.filename});
  }
  if (request.files.empty()) {
    for (const auto& [name, value] : request.params) fields.push_back({name, value, ""});
  }
  return fields;
}

}  // namespace

int http_status(const Error& error) {
  if (const auto* request = dynamic_cast<const RequestError*>(&error)) return request->status();
  switch (error.category()) {
    case ErrorCategory::Usage:
      return 400;
    case ErrorCategory::Input:
      return 422;
    case ErrorCategory::Model:
    case ErrorCategory::Internal:
      break;
  }
  return 500;
}

ExplainRequest parse_explain_form(const std::vector<FormField>& fields, const ServerLimits& limits,
                                  const std::vector<ExampleImage>& examples,
                                  const PhraseParser* parser) {
  static const std::set<std::string> kRepeatable = {"prompt", "param"};
  static const std::set<std::string> kNames = {
      "image", "example",  "prompt", "phrases", "method",   "start_layer", "start_layer_text",
      "param", "contrast", "crop",   "alpha",   "colormap", "layers"};
  std::map<std::string, std::vector<const FormField*>> by_name;
  size_t bytes = 0;
  for (const FormField& field : fields) {
    if (kNames.count(field.name) == 0) {
      std::string known;
      for (const std::string& name : kNames) known += (known.empty() ? "" : ", ") + name;
      throw bad_field("unknown field '" + field.name + "' (the fields are " + known + ")");
    }
    auto& named = by_name[field.name];
    if (!named.empty() && kRepeatable.count(field.name) == 0) {
      throw bad_field("field '" + field.name + "' is given twice");
    }
    named.push_back(&field);
    bytes += field.content.size();
  }
  if (bytes > limits.max_upload_bytes) {
    throw over_limit("the form is " + std::to_string(bytes) + " bytes, over the limit of " +
                     std::to_string(limits.max_upload_bytes) + " (--max-upload-bytes)");
  }
  const auto single = [&](const std::string& name) -> const FormField* {
    const auto found = by_name.find(name);
    return found == by_name.end() ? nullptr : found->second.front();
  };

  ExplainRequest request;
  const FormField* image = single("image");
  const FormField* example = single("example");
  if ((image == nullptr) == (example == nullptr)) {
    throw bad_field(image == nullptr
                        ? "no image: send a file in the 'image' field, or name an example"
                        : "send either an 'image' or an 'example', not both");
  }
  if (image != nullptr) {
    if (image->content.empty()) throw bad_field("field 'image' is empty (0 bytes)");
    request.image_name = image->filename.empty() ? "upload" : image->filename;
    request.image_bytes = image->content;
  } else {
    const auto found = std::find_if(examples.begin(), examples.end(), [&](const ExampleImage& e) {
      return e.name == example->content;
    });
    if (found == examples.end()) {
      std::string names;
      for (const ExampleImage& e : examples) names += (names.empty() ? "" : ", ") + e.name;
      throw bad_field("unknown example '" + example->content + "' (the examples are " + names +
                      ")");
    }
    request.image_name = found->name;
    request.image_bytes = found->bytes;
  }

  if (by_name.count("prompt") > 0) {
    for (const FormField* prompt : by_name["prompt"]) {
      check_text_length("prompt", prompt->content, limits);
      request.prompts.push_back(prompt->content);
    }
  }
  if (const FormField* phrases = single("phrases")) {
    check_text_length("phrases", phrases->content, limits);
    if (parser == nullptr) throw bad_field("field 'phrases': this server finds no phrases");
    const PhrasePrompts sentence = phrase_prompts(*parser, phrases->content, "field 'phrases'");
    request.spans.resize(request.prompts.size());
    request.prompts.insert(request.prompts.end(), sentence.texts.begin(), sentence.texts.end());
    request.spans.insert(request.spans.end(), sentence.spans.begin(), sentence.spans.end());
  }
  if (request.prompts.empty()) {
    throw bad_field("no prompts: send one or more 'prompt' fields, or a sentence in 'phrases'");
  }
  if (request.prompts.size() > limits.max_prompts) {
    throw over_limit(std::to_string(request.prompts.size()) + " prompts, over the limit of " +
                     std::to_string(limits.max_prompts) + " (--max-prompts)");
  }

  if (const FormField* method = single("method")) request.settings.method = method->content;
  MethodOptions method_options;
  const auto layer = [&](const char* name) -> std::optional<int> {
    const FormField* field = single(name);
    if (field == nullptr || field->content.empty()) return std::nullopt;
    return std::stoi(validated(name, field->content, number_in(-1000, 1000, true)));
  };
  method_options.start_layer = layer("start_layer");
  method_options.start_layer_text = layer("start_layer_text");
  if (by_name.count("param") > 0) {
    for (const FormField* param : by_name["param"]) method_options.params.push_back(param->content);
  }
  try {
    request.settings.parameters = method_parameters(method_options);
  } catch (const Error& error) {
    throw bad_field(std::string("field 'param': ") + error.what());
  }
  if (const FormField* contrast = single("contrast")) {
    check_text_length("contrast", contrast->content, limits);
    if (!contrast->content.empty()) request.settings.contrast = contrast->content;
  }
  if (const FormField* crop = single("crop")) {
    request.settings.crop =
        static_cast<CropMode>(std::stoi(validated("crop", crop->content, one_of(crop_modes()))));
  }
  if (const FormField* alpha = single("alpha")) {
    request.overlay.alpha = std::stod(validated("alpha", alpha->content, number_in(0, 1, false)));
  }
  if (const FormField* colormap = single("colormap")) {
    request.overlay.colormap =
        std::stoi(validated("colormap", colormap->content, one_of(colormaps_by_name())));
  }
  if (const FormField* layers = single("layers")) {
    request.layers = boolean_field("layers", layers->content);
  }
  return request;
}

nlohmann::json explain_request(const ClipModel& model, const Tokenizer& tokenizer,
                               const ExplainRequest& request, const ServerLimits& limits) {
  if (!image_format(request.image_bytes)) {
    throw RequestError(
        415, ErrorCategory::Input,
        "'" + request.image_name + "' is not an image (expected JPEG, PNG, WebP, BMP or TIFF)");
  }
  if (const auto size = header_dimensions(request.image_bytes)) {
    const auto [width, height] = *size;
    if (static_cast<double>(width) * static_cast<double>(height) >
        static_cast<double>(limits.max_pixels)) {
      throw over_limit("'" + request.image_name + "' is " + std::to_string(width) + "x" +
                       std::to_string(height) + " pixels, over the limit of " +
                       std::to_string(limits.max_pixels) + " (--max-pixels)");
    }
  }
  const DecodedImage image =
      decode_image(request.image_bytes, request.image_name, limits.max_pixels);
  const Session session(model, tokenizer, request.prompts, request.settings);
  Explanation explanation =
      session.explain(image, session.preprocess(image), nullptr, /*locate_peaks=*/false);

  std::vector<std::string> overlays, heatmaps;
  std::optional<RelevanceMap> first_map;
  for (size_t i = 0; i < explanation.prompts.size(); ++i) {
    RelevanceMap map = prompt_map(explanation, i);
    explanation.prompts[i].peak = map.peak;
    overlays.push_back(png_data_url(render_overlay(image.rgb, map, request.overlay)));
    if (request.layers) {
      heatmaps.push_back(
          png_data_url(render_overlay(image.rgb, map, {1.0, request.overlay.colormap})));
      if (!first_map) first_map = std::move(map);
    }
  }
  nlohmann::json answer =
      image_result_json(image_result(request.image_name, explanation, overlays, {}, request.spans));
  if (request.layers) {
    for (size_t i = 0; i < heatmaps.size(); ++i) answer["prompts"][i]["heatmap"] = heatmaps[i];
    answer["backdrop"] =
        png_data_url(render_overlay(image.rgb, *first_map, {0.0, request.overlay.colormap}));
  }
  return answer;
}

class DemoServer::Impl {
 public:
  Impl(const ClipModel& model, const Tokenizer& tokenizer, const PhraseParser& parser,
       ServerOptions options)
      : model_(model),
        tokenizer_(tokenizer),
        parser_(parser),
        options_(std::move(options)),
        slots_(options_.limits.workers, options_.limits.queue),
        http_(options_.limits) {
    const ServerLimits& limits = options_.limits;
    http_.set_payload_max_length(limits.max_upload_bytes);
    http_.set_read_timeout(limits.io_seconds);
    http_.set_write_timeout(limits.io_seconds);
    routes();
  }

  int bind() {
    const int port = options_.port == 0
                         ? http_.bind_to_any_port(options_.host)
                         : (http_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port < 0) {
      throw usage_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                        " (in use, or not an address of this machine)");
    }
    http_.widen_backlog();
    return port;
  }

  void run() { http_.listen_after_bind(); }
  void stop() { http_.stop_serving(); }

 private:
  static void send_json(httplib::Response& response, int status, const nlohmann::json& body) {
    response.status = status;
    response.set_content(json_text(body, -1), "application/json");
  }

  // Runs `answer`, turning an Error into its JSON status and anything else into a 500.
  template <typename Answer>
  static void answering(httplib::Response& response, Answer answer) {
    try {
      answer();
    } catch (const Error& error) {
      send_json(response, http_status(error), error_body(error));
    } catch (const std::exception& error) {
      send_json(response, 500,
                error_body(Error(ErrorCategory::Internal,
                                 std::string("unexpected failure: ") + error.what())));
    }
  }

  nlohmann::json info() const {
    nlohmann::json info = options_.info;
    nlohmann::json names = nlohmann::json::array();
    for (const ExampleImage& example : options_.examples) names.push_back(example.name);
    info["examples"] = names;
    nlohmann::json colormaps = nlohmann::json::array();
    for (const auto& entry : colormaps_by_name()) colormaps.push_back(entry.first);
    info["colormaps"] = colormaps;
    const ServerLimits& limits = options_.limits;
    info["limits"] = {{"max_upload_bytes", limits.max_upload_bytes},
                      {"max_pixels", limits.max_pixels},
                      {"max_prompts", limits.max_prompts},
                      {"max_prompt_bytes", limits.max_prompt_bytes},
                      {"workers", limits.workers},
                      {"queue", limits.queue}};
    return info;
  }

  void routes() {
    for (const WebAsset& asset : web_assets()) {
      const std::string path =
          std::string("/") + (asset.path == std::string("index.html") ? "" : asset.path);
      http_.Get(path, [&asset](const httplib::Request&, httplib::Response& response) {
        response.set_content(reinterpret_cast<const char*>(asset.data), asset.size,
                             asset.content_type);
        response.set_header("Cache-Control", "no-cache");
      });
    }
    http_.Get("/examples/([A-Za-z0-9_.-]+)", [this](const httplib::Request& request,
                                                    httplib::Response& response) {
      const std::string name = request.matches[1];
      for (const ExampleImage& example : options_.examples) {
        if (example.name == name) {
          response.set_content(example.bytes, "image/png");
          return;
        }
      }
      send_json(response, 404, error_body(usage_error("no example named '" + name + "'")));
    });
    http_.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      send_json(response, 200, {{"status", "ok"}});
    });
    http_.Get("/api/info", [this](const httplib::Request&, httplib::Response& response) {
      send_json(response, 200, info());
    });
    http_.Post(
        "/api/phrases", [this](const httplib::Request& request, httplib::Response& response) {
          answering(response, [&] {
            const std::vector<FormField> fields = form_fields(request);
            const auto text = std::find_if(fields.begin(), fields.end(),
                                           [](const FormField& f) { return f.name == "text"; });
            if (text == fields.end()) throw bad_field("no 'text' field: the sentence to split");
            check_text_length("text", text->content, options_.limits);
            nlohmann::json phrases = nlohmann::json::array();
            for (const Phrase& phrase : parser_.noun_phrases(text->content)) {
              phrases.push_back(
                  {{"text", phrase.text}, {"start", phrase.span.start}, {"end", phrase.span.end}});
            }
            send_json(response, 200, {{"phrases", phrases}});
          });
        });
    http_.Post(
        "/api/explain", [this](const httplib::Request& request, httplib::Response& response) {
          answering(response, [&] {
            if (!request.is_multipart_form_data()) {
              throw bad_field(
                  "expected a multipart/form-data body (curl -F image=@photo.jpg -F "
                  "prompt=...)");
            }
            const ExplainRequest explain = parse_explain_form(form_fields(request), options_.limits,
                                                              options_.examples, &parser_);
            if (!slots_.enter()) {
              response.set_header("Retry-After", std::to_string(slots_.retry_after_seconds()));
              throw RequestError(503, ErrorCategory::Internal,
                                 "every worker is busy and the queue is full; try again shortly");
            }
            const auto started = Clock::now();
            struct Leave {
              WorkerSlots& slots;
              Clock::time_point started;
              ~Leave() { slots.leave(Clock::now() - started); }
            } leave{slots_, started};
            send_json(response, 200, explain_request(model_, tokenizer_, explain, options_.limits));
          });
        });
    // cpp-httplib's own refusals (404, 413 over the payload limit, 400 malformed) get JSON too.
    http_.set_error_handler([](const httplib::Request&, httplib::Response& response) {
      if (!response.body.empty()) return;
      const int status = response.status;
      const std::string what = status == 404   ? "no such page"
                               : status == 413 ? "the request is over the upload limit "
                                                 "(--max-upload-bytes)"
                               : status == 405
                                   ? "method not allowed"
                                   : "malformed request (HTTP " + std::to_string(status) + ")";
      send_json(response, status,
                error_body(Error(status >= 500   ? ErrorCategory::Internal
                                 : status == 413 ? ErrorCategory::Input
                                                 : ErrorCategory::Usage,
                                 what)));
    });
    http_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      request_started = Clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http_.set_logger([this](const httplib::Request& request, const httplib::Response& response) {
      if (!options_.log) return;
      const auto took =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - request_started);
      options_.log(request.method + " " + request.path + " " + std::to_string(response.status) +
                   " " + std::to_string(took.count()) + " ms");
    });
  }

  const ClipModel& model_;
  const Tokenizer& tokenizer_;
  const PhraseParser& parser_;
  const ServerOptions options_;
  WorkerSlots slots_;
  DeadlineServer http_;
};

DemoServer::DemoServer(const ClipModel& model, const Tokenizer& tokenizer,
                       const PhraseParser& parser, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, parser, std::move(options))) {}
DemoServer::~DemoServer() = default;
int DemoServer::bind() { return impl_->bind(); }
void DemoServer::run() { impl_->run(); }
void DemoServer::stop() { impl_->stop(); }

}  // namespace clipxai
