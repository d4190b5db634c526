#include "transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "clipxai/error.h"

namespace clipxai {
namespace {

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, 1e-5);
}

// [B, N, H*D] -> [B, H, N, D]
torch::Tensor split_heads(const torch::Tensor& x, int heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

// [B, H, N, D] -> [B, N, H*D]
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::QuickGelu:
      return x * torch::sigmoid(1.702 * x);
    case Activation::Gelu:
      return at::gelu(x);
  }
  return x;
}

// True where a query at `query_positions` [Bq, Q] may not see key position k of `keys` keys:
// [Bq, 1, Q, keys], broadcastable over heads.
torch::Tensor causal_mask(const torch::Tensor& query_positions, int64_t keys) {
  const auto key_positions = torch::arange(keys, query_positions.options());
  return key_positions.view({1, 1, keys}).gt(query_positions.unsqueeze(-1)).unsqueeze(1);
}

}  // namespace

torch::Tensor run_block(const TransformerWeights& transformer, int layer, const torch::Tensor& x,
                        const torch::Tensor& rows, BlockTap* tap) {
  const ResidualBlockWeights& w = transformer.blocks[static_cast<size_t>(layer)];
  const bool single_head = tap != nullptr && tap->single_head;
  const int heads = single_head ? 1 : transformer.heads;
  auto normed = layer_norm(x, w.ln_1_weight, w.ln_1_bias);
  if (tap != nullptr && tap->normed) normed = tap->normed(normed);
  const auto keys_values = at::linear(normed, w.kv_weight, w.kv_bias).chunk(2, -1);
  const bool all_rows = !rows.defined();
  const auto residual = all_rows ? x : select_rows(x, rows);
  const auto query_states =
      at::linear(all_rows ? normed : select_rows(normed, rows), w.q_weight, w.q_bias);
  const auto queries = split_heads(query_states, heads);
  const auto keys = split_heads(keys_values[0], heads);
  const auto values = split_heads(keys_values[1], heads);
  const double scale = 1.0 / std::sqrt(static_cast<double>(queries.size(-1)));
  auto scores = at::matmul(queries, keys.transpose(-2, -1)) * scale;
  if (transformer.causal) {
    const auto query_positions =
        all_rows ? torch::arange(x.size(1), x.options().dtype(torch::kLong)).unsqueeze(0)
                 : rows.unsqueeze(-1);
    scores = scores.masked_fill(causal_mask(query_positions, x.size(1)),
                                -std::numeric_limits<float>::infinity());
  }
  auto probabilities = at::softmax(scores, -1);
  if (tap != nullptr && tap->attention) probabilities = tap->attention(probabilities);
  auto attended = merge_heads(at::matmul(probabilities, values));
  if (tap != nullptr && tap->attended) attended = tap->attended(attended);
  if (tap != nullptr) {
    tap->queries = query_states;
    tap->keys = keys_values[0];
    tap->values = keys_values[1];
  }
  const auto y = residual + at::linear(attended, w.out_weight, w.out_bias);
  const auto hidden =
      activate(at::linear(layer_norm(y, w.ln_2_weight, w.ln_2_bias), w.fc_weight, w.fc_bias),
               transformer.activation);
  return y + at::linear(hidden, w.proj_weight, w.proj_bias);
}

namespace {

// Block `layer` keeping its probabilities in `kept` when given; with `leaf_batch` > 0 they first
// become autograd leaves of that batch size.
torch::Tensor kept_block(const TransformerWeights& transformer, int layer, const torch::Tensor& x,
                         const torch::Tensor& rows, int64_t leaf_batch,
                         std::vector<torch::Tensor>* kept) {
  if (kept == nullptr && leaf_batch == 0) return run_block(transformer, layer, x, rows, nullptr);
  BlockTap tap;
  tap.attention = [&](const torch::Tensor& probabilities) {
    auto recorded = probabilities;
    if (leaf_batch > 0) {
      recorded =
          probabilities.detach().expand({leaf_batch, -1, -1, -1}).clone().requires_grad_(true);
    }
    if (kept != nullptr) kept->push_back(recorded);
    return recorded;
  };
  return run_block(transformer, layer, x, rows, &tap);
}

}  // namespace

torch::Tensor select_rows(const torch::Tensor& x, const torch::Tensor& rows) {
  if (rows.size(0) == 1) return x.index_select(1, rows);
  const auto batch = torch::arange(x.size(0), rows.options());
  return x.index({batch, rows}).unsqueeze(1);
}

torch::Tensor run_blocks(const TransformerWeights& transformer, const torch::Tensor& x, int begin,
                         int end) {
  torch::NoGradGuard no_grad;
  auto states = x;
  for (int layer = begin; layer < end; ++layer) {
    states = run_block(transformer, layer, states, torch::Tensor(), nullptr);
  }
  return states;
}

torch::Tensor run_transformer(const TransformerWeights& transformer, const torch::Tensor& x,
                              const torch::Tensor& rows, int64_t outputs, int keep_from,
                              std::vector<torch::Tensor>* kept, int first_block, bool branch) {
  const int layers = static_cast<int>(transformer.blocks.size());
  // Blocks before the kept ones run on every row without autograd; the last block always runs in
  // the loop below, which computes only the output rows there.
  const int shared_end = std::max(first_block, std::min(keep_from, layers - 1));
  auto states = run_blocks(transformer, x, first_block, shared_end);
  for (int layer = shared_end; layer < layers; ++layer) {
    const bool keep = layer >= keep_from;
    std::optional<torch::NoGradGuard> no_grad;
    if (!keep) no_grad.emplace();
    states = kept_block(transformer, layer, states, layers - 1 == layer ? rows : torch::Tensor(),
                        branch && layer == keep_from ? outputs : 0, keep ? kept : nullptr);
  }
  return states.squeeze(1).expand({outputs, -1});
}

TextBatch trim_to_longest_eot(const torch::Tensor& ids, const torch::Tensor& eot) {
  const int64_t length = eot.max().item<int64_t>() + 1;
  return {ids.narrow(1, 0, length), eot};
}

TextBatch text_batch(const std::vector<TokenizedText>& prompts, int context_length) {
  size_t longest = 0;
  for (const auto& prompt : prompts) {
    if (prompt.ids.empty() || prompt.ids.size() > static_cast<size_t>(context_length)) {
      throw input_error("prompt \"" + prompt.text + "\" has " + std::to_string(prompt.ids.size()) +
                        " token slots; the model's context holds 1.." +
                        std::to_string(context_length));
    }
    if (prompt.eot_index < 0 || static_cast<size_t>(prompt.eot_index) >= prompt.ids.size()) {
      throw input_error("prompt \"" + prompt.text + "\": its end-of-text slot " +
                        std::to_string(prompt.eot_index) + " lies outside its " +
                        std::to_string(prompt.ids.size()) + " token slots");
    }
    longest = std::max(longest, prompt.ids.size());
  }
  const auto count = static_cast<int64_t>(prompts.size());
  auto ids = torch::zeros({count, static_cast<int64_t>(longest)}, torch::kLong);
  auto eot = torch::empty({count}, torch::kLong);
  for (int64_t p = 0; p < count; ++p) {
    const TokenizedText& prompt = prompts[static_cast<size_t>(p)];
    ids[p]
        .narrow(0, 0, static_cast<int64_t>(prompt.ids.size()))
        .copy_(torch::tensor(prompt.ids, torch::kLong));
    eot[p] = prompt.eot_index;
  }
  return trim_to_longest_eot(ids, eot);
}

}  // namespace clipxai
