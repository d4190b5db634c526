#include "clipxai/eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "clipxai/batch_run.h"
#include "clipxai/engine.h"
#include "clipxai/error.h"
#include "clipxai/relevance.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A JSON value as quoted in messages, shortened so that a wrong huge value stays one line.
std::string quote(const json& value) {
  constexpr size_t kMaxLength = 60;
  const std::string text = value.dump();
  return text.size() <= kMaxLength ? text : text.substr(0, kMaxLength) + "...";
}

// Validates one manifest value at a time, naming the manifest file and the value's location
// ("images[3].objects[0].box") in every message.
class ManifestReader {
 public:
  explicit ManifestReader(std::string path)
      : path_(std::move(path)), directory_(fs::path(path_).parent_path()) {}

  Manifest read(const json& root) const {
    if (!root.is_object() || !root.contains("images")) {
      fail("", "expected an object {\"images\": [...]}");
    }
    const json& images = array_at(root, "images", "images");
    if (images.empty()) fail("images", "no images listed");
    Manifest manifest{path_, {}};
    for (size_t i = 0; i < images.size(); ++i) {
      manifest.images.push_back(read_image(images[i], "images[" + std::to_string(i) + "]"));
    }
    return manifest;
  }

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw input_error(path_ + ": " + (where.empty() ? "" : where + ": ") + what);
  }

 private:
  ManifestImage read_image(const json& entry, const std::string& where) const {
    if (!entry.is_object()) {
      fail(where, "expected an object with \"image\", \"prompts\", \"objects\"");
    }
    ManifestImage image;
    image.image = resolve(text_at(entry, "image", where + ".image"));
    const json& prompts = array_at(entry, "prompts", where + ".prompts");
    if (prompts.empty()) fail(where + ".prompts", "no prompts listed");
    for (size_t p = 0; p < prompts.size(); ++p) {
      const std::string at = where + ".prompts[" + std::to_string(p) + "]";
      image.prompts.push_back(non_empty_text(prompts[p], at));
      if (std::find(image.prompts.begin(), image.prompts.end() - 1, image.prompts.back()) !=
          image.prompts.end() - 1) {
        fail(at, "\"" + image.prompts.back() + "\" is listed twice");
      }
    }
    const json& objects = array_at(entry, "objects", where + ".objects");
    for (size_t o = 0; o < objects.size(); ++o) {
      image.objects.push_back(
          read_object(objects[o], where + ".objects[" + std::to_string(o) + "]"));
    }
    return image;
  }

  ManifestObject read_object(const json& entry, const std::string& where) const {
    if (!entry.is_object()) fail(where, "expected an object with \"text\" and \"box\"");
    ManifestObject object;
    object.text = text_at(entry, "text", where + ".text");
    if (!entry.contains("box")) fail(where, "missing \"box\"");
    const json& box = entry["box"];
    const bool four_numbers =
        box.is_array() && box.size() == 4 && std::all_of(box.begin(), box.end(), [](const json& v) {
          return v.is_number() && std::isfinite(v.get<double>());
        });
    if (four_numbers) {
      for (size_t k = 0; k < 4; ++k) object.box[k] = box[k].get<double>();
    }
    if (!four_numbers || !(object.box[0] < object.box[2]) || !(object.box[1] < object.box[3])) {
      fail(where + ".box", "expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got " + quote(box));
    }
    if (entry.contains("mask") && !entry["mask"].is_null()) {
      object.mask = resolve(non_empty_text(entry["mask"], where + ".mask"));
    }
    return object;
  }

  const json& array_at(const json& object, const char* key, const std::string& where) const {
    if (!object.contains(key)) fail(where, "missing");
    const json& value = object[key];
    if (!value.is_array()) fail(where, "expected an array, got " + quote(value));
    return value;
  }

  std::string text_at(const json& object, const char* key, const std::string& where) const {
    if (!object.contains(key)) fail(where, "missing");
    return non_empty_text(object[key], where);
  }

  std::string non_empty_text(const json& value, const std::string& where) const {
    if (!value.is_string() || value.get<std::string>().empty()) {
      fail(where, "expected a non-empty string, got " + quote(value));
    }
    return value.get<std::string>();
  }

  std::string resolve(const std::string& relative) const {
    const fs::path path(relative);
    return path.is_absolute() ? relative : (directory_ / path).string();
  }

  std::string path_;
  fs::path directory_;
};

// One prompt that names objects of its image, with the union of those objects' regions.
struct Target {
  size_t prompt = 0;
  cv::Mat region;  // masks where given, else boxes
  cv::Mat box;     // boxes
};

// A manifest image once its files are read.
struct LoadedImage {
  DecodedImage decoded;
  std::vector<Target> targets;
  std::vector<size_t> absent_prompts;  // prompts naming no object of the image
  int unprompted_objects = 0;
};

cv::Mat read_mask(const std::string& path, const cv::Size& size) {
  if (!fs::is_regular_file(path)) throw input_error(path + ": mask file not found");
  const cv::Mat grey = cv::imread(path, cv::IMREAD_GRAYSCALE);
  if (grey.empty()) throw input_error(path + ": cannot decode the mask image");
  if (grey.size() != size) {
    throw input_error(path + ": mask is " + std::to_string(grey.cols) + "x" +
                      std::to_string(grey.rows) + ", its image " + std::to_string(size.width) +
                      "x" + std::to_string(size.height));
  }
  return grey != 0;
}

// Throws Error(Input) for files that cannot be read and regions without a pixel in the image.
// `where` locates the entry in the manifest for messages.
LoadedImage load_entry(const ManifestImage& entry, const std::string& where) {
  LoadedImage loaded{load_image(entry.image), {}, {}, 0};
  const cv::Size size(loaded.decoded.width(), loaded.decoded.height());
  std::vector<std::optional<Target>> by_prompt(entry.prompts.size());
  for (size_t o = 0; o < entry.objects.size(); ++o) {
    const ManifestObject& object = entry.objects[o];
    const auto prompt = std::find(entry.prompts.begin(), entry.prompts.end(), object.text);
    if (prompt == entry.prompts.end()) {
      ++loaded.unprompted_objects;
      continue;
    }
    const cv::Mat box = box_region(object.box, size.width, size.height);
    if (cv::countNonZero(box) == 0) {
      throw input_error(where + ".objects[" + std::to_string(o) + "].box lies outside the " +
                        std::to_string(size.width) + "x" + std::to_string(size.height) + " image " +
                        entry.image);
    }
    const cv::Mat region = object.mask ? read_mask(*object.mask, size) : box;
    if (cv::countNonZero(region) == 0) throw input_error(*object.mask + ": mask is empty");
    std::optional<Target>& target = by_prompt[prompt - entry.prompts.begin()];
    if (!target) {
      target = Target{static_cast<size_t>(prompt - entry.prompts.begin()),
                      cv::Mat::zeros(size, CV_8U), cv::Mat::zeros(size, CV_8U)};
    }
    target->region |= region;
    target->box |= box;
  }
  for (size_t p = 0; p < entry.prompts.size(); ++p) {
    const bool names_an_object =
        std::any_of(entry.objects.begin(), entry.objects.end(),
                    [&](const ManifestObject& object) { return object.text == entry.prompts[p]; });
    if (!names_an_object) loaded.absent_prompts.push_back(p);
    if (by_prompt[p]) loaded.targets.push_back(std::move(*by_prompt[p]));
  }
  return loaded;
}

// One manifest image's objects measured on the explanation of one setting.
std::vector<ObjectResult> measure(const ManifestImage& entry, const LoadedImage& loaded,
                                  const Explanation& explanation) {
  std::vector<double> logits;
  for (const PromptExplanation& prompt : explanation.prompts) {
    logits.push_back(prompt.relevance.logit);
  }
  std::vector<ObjectResult> objects;
  for (const Target& target : loaded.targets) {
    const RelevanceMap map = prompt_map(explanation, target.prompt);
    ObjectResult object;
    object.image = entry.image;
    object.text = entry.prompts[target.prompt];
    object.peak = map.peak;
    object.pointing = peak_inside(map, target.region);
    object.pointing_box = peak_inside(map, target.box);
    object.energy = energy_inside(map, target.region);
    object.iou = iou_above_mean(map, target.region);
    if (!loaded.absent_prompts.empty()) {
      object.top1_vs_absent = ranked_first(logits, target.prompt, loaded.absent_prompts);
    }
    objects.push_back(std::move(object));
  }
  return objects;
}

void validate_start_layers(const std::vector<std::optional<int>>& start_layers,
                           const ModelConfig& config) {
  if (start_layers.empty()) throw usage_error("eval needs at least one --start-layer");
  for (const std::optional<int>& layer : start_layers) {
    if (layer && !is_valid_start_layer(*layer, config.vision_layers)) {
      throw usage_error("--start-layer " + std::to_string(*layer) + ": " + config.name + " has " +
                        std::to_string(config.vision_layers) + " vision layers (use -1 to " +
                        std::to_string(config.vision_layers - 1) + ")");
    }
  }
}

std::string format_rate(const std::optional<double>& value) {
  if (!value) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << *value;
  return out.str();
}

json rate_json(const std::optional<double>& value) { return value ? json(*value) : json(nullptr); }

json object_json(const ObjectResult& object) {
  return {
      {"image", object.image},
      {"text", object.text},
      {"peak", {object.peak.x, object.peak.y}},
      {"pointing", object.pointing},
      {"pointing_box", object.pointing_box},
      {"energy", object.energy},
      {"iou", object.iou},
      {"top1_vs_absent", object.top1_vs_absent ? json(*object.top1_vs_absent) : json(nullptr)},
  };
}

}  // namespace

Manifest parse_manifest(const std::string& text, const std::string& path) {
  const ManifestReader reader(path);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& error) {
    reader.fail("", std::string("not valid JSON: ") + error.what());
  }
  return reader.read(root);
}

Manifest load_manifest(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file || fs::is_directory(path)) throw input_error(path + ": cannot read the manifest");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_manifest(text.str(), path);
}

cv::Mat box_region(const std::array<double, 4>& box, int width, int height) {
  // Pixels whose centres c + 0.5 lie in [x0, x1): c in [ceil(x0 - 0.5), ceil(x1 - 0.5)).
  const auto first = [](double start) { return static_cast<int>(std::ceil(start - 0.5)); };
  const int x0 = std::clamp(first(box[0]), 0, width);
  const int x1 = std::clamp(first(box[2]), x0, width);
  const int y0 = std::clamp(first(box[1]), 0, height);
  const int y1 = std::clamp(first(box[3]), y0, height);
  cv::Mat region = cv::Mat::zeros(height, width, CV_8U);
  region(cv::Rect(x0, y0, x1 - x0, y1 - y0)).setTo(1);
  return region;
}

bool peak_inside(const RelevanceMap& map, const cv::Mat& region) {
  return region.at<uchar>(map.peak) != 0;
}

double energy_inside(const RelevanceMap& map, const cv::Mat& region) {
  double inside = 0, total = 0;
  for (int r = 0; r < map.values.rows; ++r) {
    const float* value = map.values.ptr<float>(r);
    const uchar* in_region = region.ptr<uchar>(r);
    for (int c = 0; c < map.values.cols; ++c) {
      total += value[c];
      if (in_region[c]) inside += value[c];
    }
  }
  return total > 0 ? inside / total : 0.0;
}

double iou_above_mean(const RelevanceMap& map, const cv::Mat& region) {
  const double mean = cv::mean(map.values(map.shown))[0];
  int intersection = 0, union_size = 0;
  for (int r = 0; r < map.values.rows; ++r) {
    const float* value = map.values.ptr<float>(r);
    const uchar* in_region = region.ptr<uchar>(r);
    const bool row_shown = r >= map.shown.y && r < map.shown.y + map.shown.height;
    for (int c = 0; c < map.values.cols; ++c) {
      const bool above =
          row_shown && c >= map.shown.x && c < map.shown.x + map.shown.width && value[c] > mean;
      intersection += above && in_region[c];
      union_size += above || in_region[c];
    }
  }
  return union_size > 0 ? static_cast<double>(intersection) / union_size : 0.0;
}

bool ranked_first(const std::vector<double>& logits, size_t own,
                  const std::vector<size_t>& rivals) {
  return std::all_of(rivals.begin(), rivals.end(),
                     [&](size_t rival) { return logits[own] > logits[rival]; });
}

MetricSummary summarize(const std::vector<ObjectResult>& objects) {
  MetricSummary summary;
  for (const ObjectResult& object : objects) {
    ++summary.objects;
    summary.pointing_hits += object.pointing;
    summary.pointing_box_hits += object.pointing_box;
    summary.energy_sum += object.energy;
    summary.iou_sum += object.iou;
    if (object.top1_vs_absent) {
      ++summary.top1_objects;
      summary.top1_hits += *object.top1_vs_absent;
    }
  }
  return summary;
}

std::optional<double> rate(double numerator, int count) {
  if (count == 0) return std::nullopt;
  return numerator / count;
}

EvalReport run_eval(const EvalOptions& options) {
  const Manifest manifest = load_manifest(options.manifest);
  ClipModel model = ClipModel::load(options.model);
  const ModelConfig& config = model.config();
  validate_start_layers(options.start_layers, config);
  const Tokenizer tokenizer = load_tokenizer(options.vocabulary, model.embedded_vocabulary(),
                                             model.path(), config.vocab_size);
  std::vector<std::vector<TokenizedText>> prompts;
  for (size_t i = 0; i < manifest.images.size(); ++i) {
    prompts.push_back(tokenize_prompts(tokenizer, manifest.images[i].prompts, config.context_length,
                                       [&](size_t p) {
                                         return manifest.path + ": images[" + std::to_string(i) +
                                                "].prompts[" + std::to_string(p) + "]";
                                       }));
  }
  model.to(options.device);

  EvalReport report;
  report.manifest = manifest.path;
  report.model_path = model.path();
  report.model = config;
  report.method_defaults = model.method_defaults();
  report.tokenizer_source = tokenizer.source();
  report.crop = options.crop;
  report.images = static_cast<int>(manifest.images.size());
  std::vector<ExplainSettings> settings;
  for (const std::optional<int>& layer : options.start_layers) {
    settings.push_back(
        {default_method_name(), start_layer_parameters({layer, std::nullopt}), options.crop});
    const auto method = create_method(settings.back().method, settings.back().parameters, model);
    const std::string label = method->label();
    report.settings.push_back({layer,
                               method_json(*method, options.crop),
                               layer ? label : label + ", the model's default",
                               {},
                               {}});
  }

  ProgressReporter progress(options.progress, manifest.images.size(), 0,
                            options.progress_out != nullptr ? *options.progress_out : std::cerr);
  BatchCallbacks callbacks;
  callbacks.failed = [&](size_t index, const Error& error) {
    report.errors.push_back({manifest.images[index].image, error.category(), error.what()});
    progress.note(std::string("clipxai: ") + error.what());
  };
  callbacks.progress = [&](size_t done, size_t failed) { progress.update(done, failed); };
  const std::function<LoadedImage(size_t)> load = [&](size_t index) {
    return load_entry(manifest.images[index],
                      manifest.path + ": images[" + std::to_string(index) + "]");
  };
  const std::function<void(size_t, LoadedImage&)> evaluate = [&](size_t index,
                                                                 LoadedImage& loaded) {
    const ManifestImage& entry = manifest.images[index];
    std::vector<std::vector<ObjectResult>> results;
    std::optional<PreprocessedImage> input;
    for (const ExplainSettings& setting : settings) {
      const Session session(model, prompts[index], setting);
      if (!input) input = session.preprocess(loaded.decoded);
      results.push_back(measure(
          entry, loaded, session.explain(loaded.decoded, *input, nullptr, /*locate_peaks=*/false)));
    }
    report.unprompted_objects += loaded.unprompted_objects;
    for (size_t s = 0; s < results.size(); ++s) {
      std::vector<ObjectResult>& objects = report.settings[s].objects;
      objects.insert(objects.end(), results[s].begin(), results[s].end());
    }
  };
  run_batch(manifest.images.size(), load, evaluate, callbacks);
  progress.finish();
  for (SettingResult& setting : report.settings) setting.summary = summarize(setting.objects);
  return report;
}

void print_eval_table(const EvalReport& report, std::ostream& out) {
  out << "Manifest " << report.manifest << ": " << report.images << " images, "
      << report.errors.size() << " failed";
  if (report.unprompted_objects > 0) {
    out << "; objects not among their image's prompts: " << report.unprompted_objects;
  }
  out << "\nModel " << report.model.name << " (" << report.model_path << "), crop "
      << to_string(report.crop) << "\n\n";

  std::size_t label_width = std::string("setting").size();
  for (const SettingResult& setting : report.settings) {
    label_width = std::max(label_width, setting.label.size());
  }
  out << std::left << std::setw(static_cast<int>(label_width)) << "setting" << std::right
      << std::setw(9) << "objects" << std::setw(10) << "pointing" << std::setw(15)
      << "pointing(box)" << std::setw(8) << "energy" << std::setw(7) << "mIoU"
      << "  "
      << "top1-vs-absent\n";
  for (const SettingResult& setting : report.settings) {
    const MetricSummary& s = setting.summary;
    out << std::left << std::setw(static_cast<int>(label_width)) << setting.label << std::right
        << std::setw(9) << s.objects << std::setw(10)
        << format_rate(rate(s.pointing_hits, s.objects)) << std::setw(15)
        << format_rate(rate(s.pointing_box_hits, s.objects)) << std::setw(8)
        << format_rate(rate(s.energy_sum, s.objects)) << std::setw(7)
        << format_rate(rate(s.iou_sum, s.objects)) << "  "
        << format_rate(rate(s.top1_hits, s.top1_objects)) << " of " << s.top1_objects << "\n";
  }
  for (const ErrorRecord& error : report.errors) out << "error: " << error.message << "\n";
}

json to_json(const EvalReport& report) {
  json settings = json::array();
  for (const SettingResult& setting : report.settings) {
    const MetricSummary& s = setting.summary;
    json per_object = json::array();
    for (const ObjectResult& object : setting.objects) per_object.push_back(object_json(object));
    settings.push_back({
        {"label", setting.label},
        {"method", setting.method},
        {"objects", s.objects},
        {"pointing", rate_json(rate(s.pointing_hits, s.objects))},
        {"pointing_box", rate_json(rate(s.pointing_box_hits, s.objects))},
        {"energy", rate_json(rate(s.energy_sum, s.objects))},
        {"miou", rate_json(rate(s.iou_sum, s.objects))},
        {"top1_vs_absent", rate_json(rate(s.top1_hits, s.top1_objects))},
        {"top1_objects", s.top1_objects},
        {"hits",
         {{"pointing", s.pointing_hits},
          {"pointing_box", s.pointing_box_hits},
          {"top1_vs_absent", s.top1_hits}}},
        {"per_object", std::move(per_object)},
    });
  }
  json errors = json::array();
  for (const ErrorRecord& error : report.errors) errors.push_back(error_json(error));
  return {
      {"clipxai_version", CLIPXAI_VERSION},
      {"manifest", report.manifest},
      {"model", model_json(report.model_path, report.model, report.method_defaults,
                           report.tokenizer_source)},
      {"crop", to_string(report.crop)},
      {"images", report.images},
      {"failed_images", report.errors.size()},
      {"unprompted_objects", report.unprompted_objects},
      {"settings", std::move(settings)},
      {"errors", std::move(errors)},
  };
}

}  // namespace clipxai
