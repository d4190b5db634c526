#include "clipxai/faithfulness.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "clipxai/output.h"
#include "method_tools.h"

namespace clipxai {
namespace {

constexpr int kBlurSize = 11;
constexpr double kBlurSigma = 5;

// The input blurred as RISE's insertion baseline: a normalised 11 x 11 Gaussian per channel,
// zero padding.
torch::Tensor blurred(const torch::Tensor& pixels) {
  const auto taps = torch::arange(kBlurSize, pixels.options()) - (kBlurSize - 1) / 2.0;
  auto line = torch::exp(-(taps * taps) / (2 * kBlurSigma * kBlurSigma));
  line = line / line.sum();
  const auto kernel = torch::outer(line, line).expand({3, 1, kBlurSize, kBlurSize}).contiguous();
  return torch::conv2d(pixels.unsqueeze(0), kernel, {}, 1, kBlurSize / 2, 1, 3).squeeze(0);
}

// The prompt's probability for each image of `images` [B, 3, R, R]: [B].
std::vector<double> probabilities(const ClipModel& model, const torch::Tensor& images,
                                  const torch::Tensor& text_features, int64_t prompt) {
  const auto features = unit_rows(model.encode_image(images));
  const auto logits = model.logit_scale() * torch::mm(features, text_features.t());
  const auto chosen =
      torch::softmax(logits.to(torch::kDouble), -1).select(1, prompt).cpu().contiguous();
  return {chosen.data_ptr<double>(), chosen.data_ptr<double>() + chosen.numel()};
}

// Tensor of ranks 1..n of `values` (flattened), ties sharing their mean rank.
torch::Tensor ranks(const torch::Tensor& values) {
  const auto flat = values.flatten().to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t n = flat.numel();
  const auto order = std::get<1>(torch::sort(flat, /*stable=*/true, 0, false)).contiguous();
  const double* value = flat.data_ptr<double>();
  const int64_t* index = order.data_ptr<int64_t>();
  auto result = torch::empty({n}, torch::kDouble);
  double* rank = result.data_ptr<double>();
  for (int64_t start = 0; start < n;) {
    int64_t end = start + 1;
    while (end < n && value[index[end]] == value[index[start]]) ++end;
    const double mean_rank = (start + end + 1) / 2.0;  // ranks start+1 .. end
    for (int64_t i = start; i < end; ++i) rank[index[i]] = mean_rank;
    start = end;
  }
  return result;
}

void normal_(torch::Tensor& tensor, double std, torch::Generator& generator) {
  tensor = torch::normal(0.0, std, tensor.sizes(), generator,
                         torch::TensorOptions().dtype(torch::kFloat))
               .to(tensor.device(), tensor.scalar_type());
}

}  // namespace

double area_under_curve(const std::vector<double>& curve) {
  if (curve.size() < 2) return 0;
  double sum = 0;
  for (double value : curve) sum += value;
  sum -= (curve.front() + curve.back()) / 2;
  return sum / static_cast<double>(curve.size() - 1);
}

DeletionInsertion deletion_insertion(const ClipModel& model, const torch::Tensor& pixels,
                                     const torch::Tensor& grid, const torch::Tensor& text_features,
                                     int64_t prompt) {
  torch::NoGradGuard no_grad;
  const int64_t resolution = pixels.size(-1);
  const auto map =
      torch::upsample_bilinear2d(grid.to(pixels.device(), torch::kFloat).unsqueeze(0).unsqueeze(0),
                                 {resolution, resolution}, false)
          .flatten();
  const int64_t count = map.numel();
  const auto order = std::get<1>(torch::sort(map, /*stable=*/true, 0, /*descending=*/true));
  auto rank = torch::empty_like(order);
  rank.index_put_({order}, torch::arange(count, order.options()));
  std::vector<int64_t> revealed;
  for (int step = 0; step <= kDeletionSteps; ++step) {
    revealed.push_back(
        static_cast<int64_t>(std::llround(static_cast<double>(step) * count / kDeletionSteps)));
  }
  const auto thresholds = torch::tensor(revealed, order.options()).view({-1, 1});
  // [steps + 1, 1, R, R]: the pixels deleted (or inserted) by each step.
  const auto changed = (rank.unsqueeze(0) < thresholds)
                           .view({-1, 1, resolution, resolution})
                           .to(pixels.scalar_type());
  const auto original = pixels.unsqueeze(0);
  DeletionInsertion result;
  result.deletion = probabilities(model, original * (1 - changed), text_features, prompt);
  result.insertion =
      probabilities(model, blurred(pixels).unsqueeze(0) * (1 - changed) + original * changed,
                    text_features, prompt);
  result.deletion_auc = area_under_curve(result.deletion);
  result.insertion_auc = area_under_curve(result.insertion);
  return result;
}

double spearman(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = ranks(a) - (a.numel() + 1) / 2.0;
  const auto y = ranks(b) - (b.numel() + 1) / 2.0;
  const double norms = std::sqrt((x * x).sum().item<double>() * (y * y).sum().item<double>());
  if (norms == 0) return std::numeric_limits<double>::quiet_NaN();
  return (x * y).sum().item<double>() / norms;
}

ClipModel with_randomised_vision_blocks(const ClipModel& model, int count, uint64_t seed) {
  ClipWeights weights = model.weights();
  auto& blocks = weights.vision.transformer.blocks;
  const int layers = static_cast<int>(blocks.size());
  const double width = static_cast<double>(model.config().vision_width);
  const double attention_std = std::pow(width, -0.5);
  const double projection_std = attention_std * std::pow(2.0 * layers, -0.5);
  const double fc_std = std::pow(2 * width, -0.5);
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(seed);
  for (int layer = std::max(layers - count, 0); layer < layers; ++layer) {
    ResidualBlockWeights& block = blocks[static_cast<size_t>(layer)];
    normal_(block.q_weight, attention_std, generator);
    normal_(block.kv_weight, attention_std, generator);
    normal_(block.out_weight, projection_std, generator);
    normal_(block.fc_weight, fc_std, generator);
    normal_(block.proj_weight, projection_std, generator);
    for (torch::Tensor* zero : {&block.q_bias, &block.kv_bias, &block.out_bias, &block.fc_bias,
                                &block.proj_bias, &block.ln_1_bias, &block.ln_2_bias}) {
      *zero = torch::zeros_like(*zero);
    }
    block.ln_1_weight = torch::ones_like(block.ln_1_weight);
    block.ln_2_weight = torch::ones_like(block.ln_2_weight);
  }
  return model.with_weights(std::move(weights));
}

std::string plot_deletion_insertion(const std::vector<CurveSeries>& series) {
  constexpr int kPanel = 420, kMargin = 50, kLegendLine = 18;
  const int legend = kLegendLine * static_cast<int>(series.size()) + 20;
  cv::Mat canvas(kMargin * 2 + kPanel + legend, kMargin * 3 + kPanel * 2, CV_8UC3,
                 cv::Scalar(255, 255, 255));
  static const std::vector<cv::Scalar> colours = {{31, 119, 180},  {214, 39, 40},  {44, 160, 44},
                                                  {148, 103, 189}, {255, 127, 14}, {23, 190, 207},
                                                  {140, 86, 75},   {127, 127, 127}};
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  for (int panel = 0; panel < 2; ++panel) {
    const cv::Point origin(kMargin + panel * (kPanel + kMargin), kMargin + kPanel);
    cv::rectangle(canvas, origin - cv::Point(0, kPanel), origin + cv::Point(kPanel, 0),
                  cv::Scalar(0, 0, 0));
    for (int tick = 0; tick <= 4; ++tick) {
      const int offset = tick * kPanel / 4;
      const std::string value = tick == 0   ? "0"
                                : tick == 4 ? "1"
                                            : "0." + std::to_string(25 * tick);
      cv::putText(canvas, value, origin + cv::Point(offset - 8, 18), font, 0.4, {0, 0, 0});
      cv::putText(canvas, value, origin + cv::Point(-40, -offset + 4), font, 0.4, {0, 0, 0});
      cv::line(canvas, origin + cv::Point(offset, 0), origin + cv::Point(offset, -kPanel),
               cv::Scalar(225, 225, 225));
      cv::line(canvas, origin + cv::Point(0, -offset), origin + cv::Point(kPanel, -offset),
               cv::Scalar(225, 225, 225));
    }
    cv::putText(canvas,
                panel == 0 ? "deletion: probability vs pixels removed (lower is better)"
                           : "insertion: probability vs pixels revealed (higher is better)",
                origin + cv::Point(0, -kPanel - 12), font, 0.42, {0, 0, 0});
    for (size_t s = 0; s < series.size(); ++s) {
      const std::vector<double>& curve = panel == 0 ? series[s].deletion : series[s].insertion;
      std::vector<cv::Point> points;
      for (size_t i = 0; i < curve.size(); ++i) {
        const double x = curve.size() > 1 ? static_cast<double>(i) / (curve.size() - 1) : 0;
        points.emplace_back(origin.x + static_cast<int>(std::lround(x * kPanel)),
                            origin.y - static_cast<int>(std::lround(curve[i] * kPanel)));
      }
      cv::polylines(canvas, points, false, colours[s % colours.size()], 2, cv::LINE_AA);
    }
  }
  for (size_t s = 0; s < series.size(); ++s) {
    const int y = kMargin * 2 + kPanel + 10 + kLegendLine * static_cast<int>(s);
    cv::line(canvas, {kMargin, y - 4}, {kMargin + 30, y - 4}, colours[s % colours.size()], 2);
    char aucs[96];
    std::snprintf(aucs, sizeof aucs, "  deletion AUC %.3f, insertion AUC %.3f",
                  area_under_curve(series[s].deletion), area_under_curve(series[s].insertion));
    cv::putText(canvas, series[s].label + aucs, {kMargin + 40, y}, font, 0.42, {0, 0, 0});
  }
  return encode_png(canvas);
}

}  // namespace clipxai
