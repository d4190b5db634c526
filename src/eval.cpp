#include "clipxai/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "clipxai/batch_run.h"
#include "clipxai/engine.h"
#include "clipxai/error.h"
#include "clipxai/faithfulness.h"
#include "clipxai/input_file.h"
#include "clipxai/output.h"
#include "clipxai/relevance.h"
#include "clipxai/tokenizer.h"
#include "method_tools.h"

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
  ManifestReader(std::string path, bool allow_outside)
      : path_(std::move(path)),
        directory_(fs::path(path_).parent_path()),
        allow_outside_(allow_outside) {}

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
    image.image = resolve(text_at(entry, "image", where + ".image"), where + ".image");
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
      object.mask = resolve(non_empty_text(entry["mask"], where + ".mask"), where + ".mask");
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

  // Judged by the path's text alone, before anything is opened: a relative path whose ".."
  // components never climb above the manifest's directory.
  std::string resolve(const std::string& text, const std::string& where) const {
    const fs::path path(text);
    if (!allow_outside_) {
      const fs::path normal = path.lexically_normal();
      if (path.is_absolute() || path.has_root_name() || *normal.begin() == "..") {
        fail(where, text +
                        " is outside the manifest's directory; pass --allow-outside to read "
                        "images and masks anywhere");
      }
    }
    return path.is_absolute() ? text : (directory_ / path).string();
  }

  std::string path_;
  fs::path directory_;
  bool allow_outside_;
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

// Decoded as every image from outside (decode_image: the five formats only, the size bounded
// from the header before decoding); the object is the pixels whose grey value is not zero.
cv::Mat read_mask(const std::string& path, const cv::Size& size, int64_t max_pixels) {
  const DecodedImage mask = decode_image(read_input_file(path, "mask"), path, max_pixels);
  if (mask.rgb.size() != size) {
    throw input_error(path + ": mask is " + std::to_string(mask.width()) + "x" +
                      std::to_string(mask.height()) + ", its image " + std::to_string(size.width) +
                      "x" + std::to_string(size.height));
  }
  cv::Mat grey;
  cv::cvtColor(mask.rgb, grey, cv::COLOR_RGB2GRAY);
  return grey != 0;
}

// Throws Error(Input) for files that cannot be read and regions without a pixel in the image.
// `where` locates the entry in the manifest for messages.
LoadedImage load_entry(const ManifestImage& entry, const std::string& where, int64_t max_pixels) {
  LoadedImage loaded{load_image(entry.image, max_pixels), {}, {}, 0};
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
    const cv::Mat region = object.mask ? read_mask(*object.mask, size, max_pixels) : box;
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
                                  const Explanation& explanation,
                                  const std::optional<std::string>& contrast) {
  std::vector<double> logits;
  for (const PromptExplanation& prompt : explanation.prompts) {
    logits.push_back(prompt.relevance.logit);
  }
  std::vector<ObjectResult> objects;
  for (const Target& target : loaded.targets) {
    if (contrast && entry.prompts[target.prompt] == *contrast) continue;
    const RelevanceMap map = prompt_map(explanation, target.prompt);
    ObjectResult object;
    object.image = entry.image;
    object.text = entry.prompts[target.prompt];
    object.prompt = target.prompt;
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

std::string format_rate(const std::optional<double>& value) {
  if (!value) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << *value;
  return out.str();
}

json rate_json(const std::optional<double>& value) { return value ? json(*value) : json(nullptr); }

std::optional<double> milliseconds_per_image(const SettingResult& setting) {
  return rate(setting.explain_seconds * 1000, setting.images);
}

std::string format_milliseconds(const SettingResult& setting) {
  const std::optional<double> value = milliseconds_per_image(setting);
  if (!value) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << *value;
  return out.str();
}

json object_json(const ObjectResult& object) {
  return {
      {"image", path_text(object.image)},
      {"text", object.text},
      {"peak", {object.peak.x, object.peak.y}},
      {"pointing", object.pointing},
      {"pointing_box", object.pointing_box},
      {"energy", object.energy},
      {"iou", object.iou},
      {"top1_vs_absent", object.top1_vs_absent ? json(*object.top1_vs_absent) : json(nullptr)},
      {"deletion_auc", rate_json(object.deletion_auc)},
      {"insertion_auc", rate_json(object.insertion_auc)},
  };
}

// The label of a setting: the method's, saying so when a model-supplied default was asked for.
std::string setting_label(const EvalSetting& setting, const Method& method) {
  const bool model_default =
      method_info(setting.method).defaults_from_model && setting.parameters.empty();
  return method.label() + (model_default ? ", the model's default" : "");
}

void add_curve(std::vector<double>& sum, const std::vector<double>& curve) {
  if (sum.empty()) sum.assign(curve.size(), 0.0);
  for (size_t i = 0; i < curve.size(); ++i) sum[i] += curve[i];
}

// Spearman correlations of each measured object's grid on the trained model with one on a
// randomised model: [setting][object].
using Correlations = std::vector<std::vector<double>>;

}  // namespace

Manifest parse_manifest(const std::string& text, const std::string& path, bool allow_outside) {
  const ManifestReader reader(path, allow_outside);
  json root;
  if (const auto why = parse_json_text(text, root)) reader.fail("", "not valid JSON: " + *why);
  return reader.read(root);
}

Manifest load_manifest(const std::string& path, bool allow_outside) {
  return parse_manifest(read_input_file(path, "manifest"), path, allow_outside);
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
    if (object.deletion_auc && object.insertion_auc) {
      ++summary.faithfulness_objects;
      summary.deletion_sum += *object.deletion_auc;
      summary.insertion_sum += *object.insertion_auc;
    }
  }
  return summary;
}

std::optional<double> rate(double numerator, int count) {
  if (count == 0) return std::nullopt;
  return numerator / count;
}

std::vector<EvalSetting> start_layer_settings(const std::vector<std::optional<int>>& start_layers) {
  std::vector<EvalSetting> settings;
  for (const std::optional<int>& layer : start_layers) {
    settings.push_back({default_method_name(), start_layer_parameters({layer, std::nullopt})});
  }
  return settings;
}

EvalReport run_eval(const EvalOptions& options) {
  const Manifest manifest = load_manifest(options.manifest, options.allow_outside);
  if (options.settings.empty()) {
    throw usage_error("eval needs at least one setting (--method, --start-layer)");
  }
  ClipModel model = ClipModel::load(options.model, options.model_options);
  const ModelConfig& config = model.config();
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
  const std::optional<TokenizedText> contrast =
      tokenize_contrast(tokenizer, options.contrast, config.context_length);
  model.to(options.device);

  EvalReport report;
  report.manifest = manifest.path;
  report.model_path = model.path();
  report.model = config;
  report.method_defaults = model.method_defaults();
  report.tokenizer_source = tokenizer.source();
  report.crop = options.crop;
  report.contrast = options.contrast;
  report.images = static_cast<int>(manifest.images.size());
  std::vector<ExplainSettings> settings;
  for (const EvalSetting& setting : options.settings) {
    settings.push_back({setting.method, setting.parameters, options.crop, options.contrast});
    const auto method = create_method(setting.method, setting.parameters, model);
    if (contrast) check_contrast(*method, *contrast);
    SettingResult result;
    result.setting = setting;
    result.method = method_json(*method, options.crop, options.contrast);
    result.label = setting_label(setting, *method);
    report.settings.push_back(std::move(result));
  }
  // The cascading randomisation: randomised[k - 1] has its top k vision blocks re-initialised.
  std::vector<ClipModel> randomised;
  if (options.sanity) {
    for (int k = 1; k <= config.vision_layers; ++k) {
      randomised.push_back(with_randomised_vision_blocks(model, k, static_cast<uint64_t>(k)));
    }
  }
  std::vector<Correlations> correlations(randomised.size(), Correlations(settings.size()));

  ProgressReporter progress(options.progress, manifest.images.size(), 0,
                            options.progress_out != nullptr ? *options.progress_out : std::cerr);
  BatchCallbacks callbacks;
  callbacks.failed = [&](size_t index, const Error& error) {
    report.errors.push_back(
        {path_text(manifest.images[index].image), error.category(), error.what()});
    progress.note(std::string("clipxai: ") + error.what());
  };
  callbacks.progress = [&](size_t done, size_t failed) { progress.update(done, failed); };
  const std::function<LoadedImage(size_t)> load = [&](size_t index) {
    return load_entry(manifest.images[index],
                      manifest.path + ": images[" + std::to_string(index) + "]",
                      options.max_pixels);
  };
  const std::function<void(size_t, LoadedImage&)> evaluate = [&](size_t index,
                                                                 LoadedImage& loaded) {
    const ManifestImage& entry = manifest.images[index];
    std::vector<std::vector<ObjectResult>> results;
    std::vector<double> seconds;
    std::optional<PreprocessedImage> input;
    torch::Tensor text_features;
    if (options.deletion_insertion) {
      torch::NoGradGuard no_grad;
      text_features = unit_rows(model.encode_text(prompts[index]));
    }
    for (size_t s = 0; s < settings.size(); ++s) {
      const Session session(model, prompts[index], settings[s], nullptr, contrast);
      if (!input) input = session.preprocess(loaded.decoded);
      const auto start = std::chrono::steady_clock::now();
      const Explanation explanation =
          session.explain(loaded.decoded, *input, nullptr, /*locate_peaks=*/false);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      results.push_back(measure(entry, loaded, explanation, options.contrast));
      if (options.deletion_insertion) {
        const auto pixels = input->pixels.to(model.device());
        for (ObjectResult& object : results.back()) {
          const DeletionInsertion curves =
              deletion_insertion(model, pixels, explanation.prompts[object.prompt].relevance.grid,
                                 text_features, static_cast<int64_t>(object.prompt));
          object.deletion_auc = curves.deletion_auc;
          object.insertion_auc = curves.insertion_auc;
          add_curve(report.settings[s].deletion_curve, curves.deletion);
          add_curve(report.settings[s].insertion_curve, curves.insertion);
        }
      }
      for (size_t k = 0; k < randomised.size(); ++k) {
        const Session destroyed(randomised[k], prompts[index], settings[s], nullptr, contrast);
        const Explanation other = destroyed.explain(loaded.decoded, *input, nullptr, false);
        for (const ObjectResult& object : results.back()) {
          correlations[k][s].push_back(spearman(explanation.prompts[object.prompt].relevance.grid,
                                                other.prompts[object.prompt].relevance.grid));
        }
      }
    }
    report.unprompted_objects += loaded.unprompted_objects;
    for (size_t s = 0; s < results.size(); ++s) {
      SettingResult& setting = report.settings[s];
      setting.objects.insert(setting.objects.end(), results[s].begin(), results[s].end());
      setting.explain_seconds += seconds[s];
      ++setting.images;
    }
  };
  run_batch(manifest.images.size(), load, evaluate, callbacks);
  progress.finish();
  for (size_t s = 0; s < report.settings.size(); ++s) {
    SettingResult& setting = report.settings[s];
    setting.summary = summarize(setting.objects);
    for (std::vector<double>* curve : {&setting.deletion_curve, &setting.insertion_curve}) {
      for (double& value : *curve) value /= setting.summary.faithfulness_objects;
    }
    for (const Correlations& at_depth : correlations) {
      double sum = 0;
      int defined = 0;
      for (double value : at_depth[s]) {
        if (std::isnan(value)) continue;
        sum += value;
        ++defined;
      }
      setting.sanity.push_back(rate(sum, defined));
    }
  }
  return report;
}

std::string plot_curves(const EvalReport& report) {
  std::vector<CurveSeries> series;
  for (const SettingResult& setting : report.settings) {
    if (setting.deletion_curve.empty()) continue;
    series.push_back({setting.setting.method + " (" + setting.label + ")", setting.deletion_curve,
                      setting.insertion_curve});
  }
  if (series.empty()) {
    throw usage_error(
        "no deletion and insertion curves to plot (eval --deletion-insertion; no "
        "object was measured)");
  }
  return plot_deletion_insertion(series);
}

void print_eval_table(const EvalReport& report, std::ostream& out) {
  out << "Manifest " << report.manifest << ": " << report.images << " images, "
      << report.errors.size() << " failed";
  if (report.unprompted_objects > 0) {
    out << "; objects not among their image's prompts: " << report.unprompted_objects;
  }
  out << "\nModel " << report.model.name << " (" << report.model_path << "), crop "
      << to_string(report.crop) << "\n\n";

  if (report.contrast) out << "Contrast: each prompt against \"" << *report.contrast << "\"\n\n";
  std::size_t method_width = std::string("method").size();
  std::size_t label_width = std::string("setting").size();
  for (const SettingResult& setting : report.settings) {
    method_width = std::max(method_width, setting.setting.method.size());
    label_width = std::max(label_width, setting.label.size());
  }
  const auto row_start = [&](const std::string& method, const std::string& label) {
    out << std::left << std::setw(static_cast<int>(method_width)) << method << "  "
        << std::setw(static_cast<int>(label_width)) << label << std::right;
  };
  row_start("method", "setting");
  out << std::setw(9) << "objects" << std::setw(10) << "pointing" << std::setw(15)
      << "pointing(box)" << std::setw(8) << "energy" << std::setw(7) << "mIoU" << std::setw(10)
      << "deletion" << std::setw(11) << "insertion" << std::setw(10) << "ms/image"
      << "  "
      << "top1-vs-absent\n";
  for (const SettingResult& setting : report.settings) {
    const MetricSummary& s = setting.summary;
    row_start(setting.setting.method, setting.label);
    out << std::setw(9) << s.objects << std::setw(10)
        << format_rate(rate(s.pointing_hits, s.objects)) << std::setw(15)
        << format_rate(rate(s.pointing_box_hits, s.objects)) << std::setw(8)
        << format_rate(rate(s.energy_sum, s.objects)) << std::setw(7)
        << format_rate(rate(s.iou_sum, s.objects)) << std::setw(10)
        << format_rate(rate(s.deletion_sum, s.faithfulness_objects)) << std::setw(11)
        << format_rate(rate(s.insertion_sum, s.faithfulness_objects)) << std::setw(10)
        << format_milliseconds(setting) << "  " << format_rate(rate(s.top1_hits, s.top1_objects))
        << " of " << s.top1_objects << "\n";
  }
  if (!report.settings.empty() && !report.settings.front().sanity.empty()) {
    out << "\nModel randomisation (Spearman correlation with the trained model's maps; the top k "
           "vision blocks re-initialised):\n";
    row_start("method", "setting");
    for (size_t k = 1; k <= report.settings.front().sanity.size(); ++k) {
      out << std::setw(8) << ("k=" + std::to_string(k));
    }
    out << "\n";
    for (const SettingResult& setting : report.settings) {
      row_start(setting.setting.method, setting.label);
      for (const std::optional<double>& value : setting.sanity) {
        out << std::setw(8) << format_rate(value);
      }
      out << "\n";
    }
  }
  for (const ErrorRecord& error : report.errors) out << "error: " << error.message << "\n";
}

json to_json(const EvalReport& report) {
  json settings = json::array();
  for (const SettingResult& setting : report.settings) {
    const MetricSummary& s = setting.summary;
    json per_object = json::array();
    for (const ObjectResult& object : setting.objects) per_object.push_back(object_json(object));
    json sanity = json::array();
    for (size_t k = 0; k < setting.sanity.size(); ++k) {
      sanity.push_back({{"randomised_blocks", k + 1}, {"spearman", rate_json(setting.sanity[k])}});
    }
    settings.push_back({
        {"label", setting.label},
        {"method", setting.method},
        {"objects", s.objects},
        {"pointing", rate_json(rate(s.pointing_hits, s.objects))},
        {"pointing_box", rate_json(rate(s.pointing_box_hits, s.objects))},
        {"energy", rate_json(rate(s.energy_sum, s.objects))},
        {"miou", rate_json(rate(s.iou_sum, s.objects))},
        {"top1_vs_absent", rate_json(rate(s.top1_hits, s.top1_objects))},
        {"deletion_auc", rate_json(rate(s.deletion_sum, s.faithfulness_objects))},
        {"insertion_auc", rate_json(rate(s.insertion_sum, s.faithfulness_objects))},
        {"ms_per_image", rate_json(milliseconds_per_image(setting))},
        {"top1_objects", s.top1_objects},
        {"hits",
         {{"pointing", s.pointing_hits},
          {"pointing_box", s.pointing_box_hits},
          {"top1_vs_absent", s.top1_hits}}},
        {"deletion_curve", setting.deletion_curve},
        {"insertion_curve", setting.insertion_curve},
        {"sanity", std::move(sanity)},
        {"per_object", std::move(per_object)},
    });
  }
  json errors = json::array();
  for (const ErrorRecord& error : report.errors) errors.push_back(error_json(error));
  return {
      {"clipxai_version", CLIPXAI_VERSION},
      {"manifest", path_text(report.manifest)},
      {"model", model_json(report.model_path, report.model, report.method_defaults,
                           report.tokenizer_source)},
      {"crop", to_string(report.crop)},
      {"contrast", report.contrast ? json(*report.contrast) : json(nullptr)},
      {"images", report.images},
      {"failed_images", report.errors.size()},
      {"unprompted_objects", report.unprompted_objects},
      {"settings", std::move(settings)},
      {"errors", std::move(errors)},
  };
}

}  // namespace clipxai
