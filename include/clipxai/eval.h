// `clipxai eval`: a benchmark of explanation methods — how well their maps land on the objects
// they name, how faithful they are to the model, and how long they take.
//
// Manifest (JSON; paths relative to the manifest's directory; unless outside paths are allowed,
// every image and mask must lie in that directory or below it, so a manifest from elsewhere cannot
// make clipxai open /etc/passwd or ../../secret.png):
//   {"images": [{"image": "scenes/000.png",
//                "prompts": ["girl", "boy", "dog", ...],
//                "objects": [{"text": "girl", "box": [x0, y0, x1, y1],
//                             "mask": "scenes/000_girl.png"}, ...]}, ...]}
// - "box": in the image's pixels (after its EXIF orientation), x1 and y1 exclusive; pixel (c, r)
//   belongs to the box when its centre (c + 0.5, r + 0.5) lies in [x0, x1) x [y0, y1), i.e.
//   x0 <= c < x1 and y0 <= r < y1 for whole-number boxes (as scripts/render_scenes.py writes).
// - "mask" (optional): an image of the same size whose non-zero pixels (read as grey) are the
//   object's visible pixels.
// - "prompts": distinct, non-empty texts, all explained in one explain_image call per setting.
//   An object is measured when its "text" is one of them (exact string match); objects sharing a
//   text are measured as one, with the union of their regions (a map for "dog" may point at
//   either dog). An object that is not prompted is not measured but still counts as present.
// Unknown keys are ignored. An image or mask that cannot be read, or a box or mask that leaves no
// object pixel inside the image, is recorded as that image's error (and its message goes to the
// progress stream, even when quiet) and the run goes on; `clipxai eval` then exits 2.
//
// Settings: each a method with its parameters (method.h), e.g. chefer2021 with a vision start
// layer (-1 = last layer only, the notebook's default; 0 = every layer), or legrad. Every image is
// explained once per setting; with a contrast text every prompt is explained against it (a prompt
// equal to the contrast is then not measured: its score difference is zero).
//
// Each measured object's map is upsampled to the image as the overlays are (render.h: bilinear
// over the model's crop, min-max normalised over the pixels the model saw, 0 elsewhere). Its
// ground-truth region is its mask when given, else its box. Per object:
//   pointing        the map's peak (render.h) lies in the region (the pointing game of Zhang et
//                   al. 2016, without their 15-pixel tolerance);
//   pointing_box    the peak lies in the box, mask or not (comparable with box-only benchmarks);
//   energy          the map's mass in the region / its mass over the image (energy-based
//                   pointing game, Wang et al. 2020); 0 for a flat map;
//   iou             IoU of the region with {pixels where the map exceeds its mean over the pixels
//                   the model saw} — the threshold of Chefer et al.'s segmentation protocol;
//                   averaged over objects it is the table's mIoU (per-object foreground IoU, not
//                   Chefer's dataset-level two-class mIoU);
//   top1_vs_absent  "named concept ranked first against absent concepts": the object's prompt has
//                   a strictly higher logit than every absent prompt of its image (prompts that
//                   name no object of the image). Objects of images without absent prompts are not
//                   counted. Logits do not depend on the start layer, so it is the same for every
//                   setting. (Plain top-1 over all prompts of a one-object image is this same
//                   test, so it is not reported separately.)
//   deletion, insertion  (with EvalOptions::deletion_insertion) the areas under the deletion and
//                   insertion curves of faithfulness.h: the object's prompt's probability as its
//                   map's pixels are removed, or revealed from a blur.
// Per setting, also the milliseconds per image of explaining (Session::explain), and with
// EvalOptions::sanity the model-randomisation test of faithfulness.h: for k = 1 .. vision layers,
// the top k blocks re-initialised, the mean Spearman correlation of the measured objects' grids
// with the trained model's.
// On scripts/make_manifest.py's manifests these are, object for object, scripts/eval_model.py's
// pointing_mask (pointing), pointing (pointing_box) and top1_prompts (top1_vs_absent).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "clipxai/image.h"
#include "clipxai/method.h"
#include "clipxai/model.h"
#include "clipxai/progress.h"
#include "clipxai/render.h"
#include "clipxai/report.h"

namespace clipxai {

// ---- Manifest ----

struct ManifestObject {
  std::string text;
  std::array<double, 4> box{};      // x0, y0, x1, y1
  std::optional<std::string> mask;  // resolved path
};

struct ManifestImage {
  std::string image;  // resolved path
  std::vector<std::string> prompts;
  std::vector<ManifestObject> objects;
};

struct Manifest {
  std::string path;
  std::vector<ManifestImage> images;
};

// Throws Error(Input) naming `path` and the JSON location of the problem, e.g.
// "m.json: images[3].objects[0].box: expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1", or an
// image or mask path outside the manifest's directory ("..", absolute) unless `allow_outside`.
// Nothing a path names is opened here.
Manifest load_manifest(const std::string& path, bool allow_outside = false);
// The same from the manifest's text; relative paths are resolved against `path`'s directory.
Manifest parse_manifest(const std::string& text, const std::string& path,
                        bool allow_outside = false);

// ---- Metrics on one upsampled map (render.h) and one ground-truth region ----

// A region is a CV_8U image of the map's size; non-zero pixels belong to the object.
cv::Mat box_region(const std::array<double, 4>& box, int width, int height);

bool peak_inside(const RelevanceMap& map, const cv::Mat& region);
double energy_inside(const RelevanceMap& map, const cv::Mat& region);
double iou_above_mean(const RelevanceMap& map, const cv::Mat& region);
// Whether logits[own] is strictly higher than every logits[rival]; true when there is no rival.
bool ranked_first(const std::vector<double>& logits, size_t own, const std::vector<size_t>& rivals);

// ---- Running ----

// One table row: a method and its parameters (absent ones: the method's defaults).
struct EvalSetting {
  std::string method = default_method_name();
  MethodParameters parameters = MethodParameters::object();
};
// chefer2021 once per start layer (empty: the model's default).
std::vector<EvalSetting> start_layer_settings(const std::vector<std::optional<int>>& start_layers);

struct EvalOptions {
  std::string manifest;
  bool allow_outside = false;  // image and mask paths may leave the manifest's directory
  std::string model;           // checkpoint path (the command line resolves the default model)
  LoadOptions model_options;
  int64_t max_pixels = kDefaultMaxPixels;  // image.h: a larger image is an error for it alone
  VocabularySources vocabulary;  // tokenizer.h; empty: the model's embedded vocabulary only
  std::vector<EvalSetting> settings{EvalSetting{}};
  std::optional<std::string> contrast;  // explain every prompt against this text
  bool deletion_insertion = false;      // 102 forward passes of the vision tower per object
  bool sanity = false;                  // explain every image again per randomised depth
  CropMode crop = CropMode::Center;
  torch::Device device = torch::kCPU;
  // Progress over the manifest's images (progress.h), on `progress_out` (standard error when
  // null).
  ProgressStyle progress = ProgressStyle::Quiet;
  std::ostream* progress_out = nullptr;
};

// One measured prompt of one image (see "objects sharing a text" above).
struct ObjectResult {
  std::string image;  // resolved path
  std::string text;
  size_t prompt = 0;  // its index among the image's prompts
  cv::Point peak;
  bool pointing = false;
  bool pointing_box = false;
  double energy = 0;
  double iou = 0;
  std::optional<bool> top1_vs_absent;  // empty when the image has no absent prompt
  std::optional<double> deletion_auc;  // with EvalOptions::deletion_insertion
  std::optional<double> insertion_auc;
};

struct MetricSummary {
  int objects = 0;
  int pointing_hits = 0;
  int pointing_box_hits = 0;
  double energy_sum = 0;
  double iou_sum = 0;
  int top1_objects = 0;
  int top1_hits = 0;
  int faithfulness_objects = 0;  // objects with deletion and insertion AUCs
  double deletion_sum = 0;
  double insertion_sum = 0;
};
MetricSummary summarize(const std::vector<ObjectResult>& objects);
// numerator / count, or empty when count is 0.
std::optional<double> rate(double numerator, int count);

struct SettingResult {
  EvalSetting setting;    // as requested
  nlohmann::json method;  // the document's "method" object (engine.h's method_json)
  std::string label;      // Method::label: "last layer (5)", "all layers (0-5)", "layers 3-5", ...;
                          // "..., the model's default" when a model-supplied default was asked for
  std::vector<ObjectResult> objects;
  MetricSummary summary;
  double explain_seconds = 0;  // Session::explain over every image
  int images = 0;              // explained
  // With deletion_insertion: the mean curves over the objects (kDeletionSteps + 1 points each).
  std::vector<double> deletion_curve;
  std::vector<double> insertion_curve;
  // With sanity: [k - 1] = the mean Spearman correlation with the top k vision blocks
  // re-initialised (empty when no object's maps had a defined correlation).
  std::vector<std::optional<double>> sanity;
};

struct EvalReport {
  std::string manifest;
  std::string model_path;
  ModelConfig model;
  MethodDefaults method_defaults;
  std::string tokenizer_source;
  CropMode crop = CropMode::Center;
  std::optional<std::string> contrast;
  int images = 0;              // listed in the manifest
  int unprompted_objects = 0;  // objects whose text is none of their image's prompts
  std::vector<SettingResult> settings;
  std::vector<ErrorRecord> errors;  // one per image that could not be evaluated
};

// Reads the manifest (before anything else), loads the model and tokenizer, moves the model to
// options.device and explains every image once per setting (a Session per image and setting,
// the images decoded ahead as batch_run.h does). Throws Error(Input) for a bad
// manifest or a prompt without tokens, Error(Model) for the model or vocabulary, Error(Usage) for
// no settings, an unknown method or parameters it refuses (a start layer outside the model's
// layers), or a contrast a method refuses.
EvalReport run_eval(const EvalOptions& options);

// The table: a header naming manifest, model and counts, then one row per setting with method,
// setting, objects, pointing, pointing(box), energy, mIoU, deletion and insertion AUC ("-" when
// not measured), milliseconds per image and top-1 vs absent (with its count); with sanity a
// second table of the Spearman correlations; then any errors.
void print_eval_table(const EvalReport& report, std::ostream& out);

// The PNG of every setting's mean deletion and insertion curves (faithfulness.h), labelled by
// method and setting. Throws Error(Usage) when the report holds no curves.
std::string plot_curves(const EvalReport& report);

// {"clipxai_version", "manifest", "model" (report.h's model_json), "crop", "images",
//  "failed_images", "unprompted_objects",
//  "contrast" (text or null),
//  "settings": [{"label", "method" (engine.h's method_json), "objects", "pointing",
//                "pointing_box", "energy", "miou", "top1_vs_absent", "deletion_auc",
//                "insertion_auc" (rates and means; null when nothing was counted),
//                "ms_per_image", "top1_objects",
//                "hits": {"pointing", "pointing_box", "top1_vs_absent"},
//                "deletion_curve", "insertion_curve" (mean curves, [] when not measured),
//                "sanity": [{"randomised_blocks", "spearman" (or null)}] ([] when not run),
//                "per_object": [{"image", "text", "peak": [x, y], "pointing", "pointing_box",
//                                "energy", "iou", "top1_vs_absent" (bool or null),
//                                "deletion_auc", "insertion_auc" (or null)}]}],
//  "errors": [report.h's error_json]}
nlohmann::json to_json(const EvalReport& report);

}  // namespace clipxai
