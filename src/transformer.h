// Internal: the residual attention blocks of both towers, with attention probabilities kept
// for relevance, and the work-saving rules that keep results exact:
//  - only the token rows that reach the output are computed in the last block (the class token
//    of the image, the EOT token of each text): the other rows' outputs are never used;
//  - blocks before the first kept one run without autograd, at the batch size of the input;
//    an input shared by P outputs (one image, P prompts) is computed once and branches into P
//    copies only at the first kept block, whose probabilities become the autograd leaves.
#pragma once

#include <functional>
#include <vector>

#include <torch/types.h>

#include "clipxai/model.h"

namespace clipxai {

// What a method reads or replaces inside one residual block (run_block). Each hook, when set, is
// called with the tensor as computed and returns what the block continues with (an autograd leaf,
// a copy per prompt); the block's queries, keys and values are left in the tap.
struct BlockTap {
  // Attention with one head over the full width (scores scaled by 1/sqrt(width)) instead of the
  // model's heads: Grad-ECLIP's reading of the block.
  bool single_head = false;
  std::function<torch::Tensor(const torch::Tensor&)> normed;     // ln_1(x) [B, N, W]
  std::function<torch::Tensor(const torch::Tensor&)> attention;  // probabilities [B, H, Q, N]
  std::function<torch::Tensor(const torch::Tensor&)> attended;   // before out-proj [B, Q, W]
  // Filled by the block: [B, Q, W] (the computed rows), [B, N, W], [B, N, W], before the
  // head split.
  torch::Tensor queries, keys, values;
};

// Block `layer` of `transformer` over token states `x` [B, N, W], with autograd as the caller
// has it. `rows` as select_rows ([1] or [B]; undefined: every row). Returns [B', Q, W].
torch::Tensor run_block(const TransformerWeights& transformer, int layer, const torch::Tensor& x,
                        const torch::Tensor& rows, BlockTap* tap);

// Runs blocks [begin, end) of `transformer` over token states `x` [B, N, W] without autograd,
// every row (e.g. the text blocks before the start layer, shared by every image explained against
// the same prompts). `end` must be below the number of blocks.
torch::Tensor run_blocks(const TransformerWeights& transformer, const torch::Tensor& x, int begin,
                         int end);

// Runs the blocks of `transformer` from `first_block` on (the earlier ones already applied to `x`,
// see run_blocks) over token states `x` [B, N, W] and returns, for each of
// `outputs` outputs, the final state of one token row: [outputs, W]. `rows` names that row: [1]
// (the same row for every output, e.g. the class token) or [B] (one per batch element, B ==
// outputs). B is `outputs`, or 1 when all outputs share one input.
// Blocks from `keep_from` on run with autograd and append their attention probabilities to
// `kept`: [outputs, H, N, N] per block, and [outputs, H, 1, N] (the output row only) for the last
// block. The probabilities of block `keep_from` (>= first_block) are autograd leaves (so `x` must
// not require grad); keep_from == number of blocks keeps nothing and records no graph. Without
// `branch` the input is not copied per output: a shared input keeps batch 1 to the end (no
// gradients wanted), and the kept probabilities are [1, H, ...].
torch::Tensor run_transformer(const TransformerWeights& transformer, const torch::Tensor& x,
                              const torch::Tensor& rows, int64_t outputs, int keep_from,
                              std::vector<torch::Tensor>* kept, int first_block = 0,
                              bool branch = true);

// Rows `rows` of `x` [B, N, ...]: [1] (the same row of every batch element) or [B] (one per
// batch element) -> [B, 1, ...].
torch::Tensor select_rows(const torch::Tensor& x, const torch::Tensor& rows);

// Prompts as a batch for the causal text tower: `ids` [B, T] cut to the longest EOT + 1 slots
// (later slots change no EOT output), and `eot` [B], the slot of each row's end-of-text token.
struct TextBatch {
  torch::Tensor ids;
  torch::Tensor eot;
};
TextBatch trim_to_longest_eot(const torch::Tensor& ids, const torch::Tensor& eot);
// The prompts' context slots as one zero-padded batch, trimmed as above; the EOT slots are the
// tokenizer's (TokenizedText::eot_index). Throws Error(Input) for a prompt that has no slots, more
// than `context_length`, or an EOT slot outside its ids.
TextBatch text_batch(const std::vector<TokenizedText>& prompts, int context_length);

}  // namespace clipxai
