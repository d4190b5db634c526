// Internal: tensor steps shared by the explanation methods (src/method_*.cpp), the trace and
// the faithfulness measures.
#pragma once

#include <torch/torch.h>

namespace clipxai {

// Each row scaled to unit length (CLIP features before their cosine).
inline torch::Tensor unit_rows(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

// `count` copies of `x` [1 or count, ...] along dim 0, detached, as one autograd leaf: each
// prompt's copy then receives exactly its own score's gradient.
inline torch::Tensor leaf_copies(const torch::Tensor& x, int64_t count) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), -1);
  shape[0] = count;
  return x.detach().expand(shape).clone().requires_grad_(true);
}

// Rows over the image tokens [B, N] (class token first) -> the patch grid [count, G, G], a
// shared row (B = 1) repeated for every prompt.
inline torch::Tensor patch_grid(const torch::Tensor& rows, int grid, int64_t count) {
  return rows.narrow(-1, 1, static_cast<int64_t>(grid) * grid)
      .reshape({rows.size(0), grid, grid})
      .expand({count, grid, grid})
      .contiguous();
}

// (x - min) / (max - min) along the last dimension over the entries where `keep` is true
// (undefined: all), as Grad-ECLIP normalises its q.k weights.
inline torch::Tensor min_max_rows(const torch::Tensor& x, const torch::Tensor& keep = {}) {
  const double inf = std::numeric_limits<double>::infinity();
  const auto low = (keep.defined() ? x.masked_fill(keep.logical_not(), inf) : x).amin(-1, true);
  const auto high = (keep.defined() ? x.masked_fill(keep.logical_not(), -inf) : x).amax(-1, true);
  return (x - low) / (high - low);
}

}  // namespace clipxai
