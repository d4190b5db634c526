// The forward trace every explanation method computes from: one image against P prompts through
// both towers, recording what the method asks for (TraceRequest), with at most one backward pass
// for all prompts together.
//
// The vision tower runs once for the image up to the first recorded block, without autograd, and
// branches into P copies there, so each prompt's gradients stay apart; the text tower's blocks
// before its first recorded block run once per set of prompts (prepare_text), not once per image.
// The last block of each tower computes only the row that reaches the output (the class token;
// each prompt's end-of-text token), so its recorded attention holds that row only. The text
// tower runs only up to the longest end-of-text slot of the prompts.
//
// The image's part before the first recorded block needs no gradients and does not depend on the
// prompts, so it runs for a batch of images at once (prepare_images: larger matrix products run
// faster per image than one image's), and each image's trace continues from its share.
//
// Methods that run the last blocks themselves (with their own gradient targets, gradcam.cpp and
// the like) ask instead for the token states entering a block (vision_state_at, text_state_at):
// the image's are computed once, without autograd, and shared by every prompt.
//
// With a contrast text the score explained is logit(prompt) - logit(contrast) for the same image
// (the scores reported stay the prompts' own).
//
// Shapes: P prompts, H heads, N = G*G + 1 image tokens (class token first), T text slots (up to
// the longest EOT + 1), W a tower's width, E the embedding size. Attention is the softmax
// probability, [P, H, queries, keys] ([1, H, ...] for the image without gradients: every prompt
// shares it). Everything stays on the model's device.
#pragma once

#include <vector>

#include <torch/types.h>

#include "clipxai/model.h"
#include "clipxai/timings.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct TraceRequest {
  // The first block (0-based) of each tower whose attention is recorded; the number of blocks
  // records none. Blocks before it run without autograd.
  int vision_from = 0;
  int text_from = 0;
  // Whether to compute d(sum of the P logits) / d(recorded attention): the prompts' scores are
  // independent, so each prompt's copy gets exactly its own score's gradient.
  bool gradients = true;
  // The block (0-based) whose input token states to record, or -1: none.
  int vision_state_at = -1;
  int text_state_at = -1;
  // Whether the method needs every prompt of the set, not only the traced chunk's (a softmax
  // over the prompts): see ForwardTrace::prompt_set_features.
  bool prompt_set = false;
};

// The part of a trace that does not depend on the image. Tied to the model (and its device) it
// was made with.
struct PreparedText {
  TraceRequest request;
  torch::Tensor eot;  // [P] int64, the end-of-text slot of each prompt
  // The text blocks already applied: those before request.text_from, but never the last block,
  // which computes only the EOT rows when the trace runs.
  int blocks_applied = 0;
  torch::Tensor states;      // [P, T, Wt] after text blocks [0, blocks_applied)
  torch::Tensor text_state;  // [P, T, Wt] entering block request.text_state_at, or undefined
  torch::Tensor contrast;    // [1, E] the contrast text's unit features, or undefined
  // With request.prompt_set, when these prompts are a chunk of a larger set (relevance.h): the
  // unit features of the whole set [S, E] and where the chunk starts in it; else undefined, 0.
  torch::Tensor prompt_set_features;
  int64_t first_prompt = 0;
};

struct ForwardTrace {
  torch::Tensor logits;   // [P] exp(logit_scale) * cosine, detached
  torch::Tensor cosines;  // [P], detached
  // Blocks [vision_from, layers): [P, H, N, N] each, the last block [P, H, 1, N] (class row).
  std::vector<torch::Tensor> vision_attention;
  // Blocks [text_from, layers): [P, H, T, T] each, the last block [P, H, 1, T] (each EOT row).
  std::vector<torch::Tensor> text_attention;
  // With request.gradients: the gradient of the summed logits for each recorded attention, same
  // shapes; else empty.
  std::vector<torch::Tensor> vision_gradients;
  std::vector<torch::Tensor> text_gradients;
  torch::Tensor eot;  // [P] int64
  // Unit features, detached: the image [1, E], the prompts [P, E], the contrast [1, E] or
  // undefined.
  torch::Tensor image_features, text_features, contrast;
  // With vision_state_at / text_state_at: [1, N, W] entering that vision block, [P, T, Wt]
  // entering that text block; else undefined.
  torch::Tensor vision_state, text_state;
  // As PreparedText's: the whole prompt set's unit features [S, E] and the index of this trace's
  // first prompt in it; undefined and 0 when the trace holds the whole set (text_features).
  torch::Tensor prompt_set_features;
  int64_t first_prompt = 0;
};

// The image side of traces up to the first block that needs gradients, for B images: the patch
// embedding and the vision blocks before min(request.vision_from, layers - 1), without autograd.
struct ImageStates {
  torch::Tensor states;  // [B, N, W] entering block first_block
  int first_block = 0;
  // [B, N, W] entering block request.vision_state_at, or undefined when it is -1.
  torch::Tensor vision_state;
  int64_t size() const { return states.size(0); }
  // Image `index` alone, as a batch of one (views, no copy).
  ImageStates image(int64_t index) const;
};

// `pixels`: [B, 3, R, R] normalised images (image.h), on any device. `timings`, when given, is
// charged with the vision phase. Throws Error(Input) for pixels of another shape.
ImageStates prepare_images(const ClipModel& model, const torch::Tensor& pixels,
                           const TraceRequest& request, Timings* timings = nullptr);

// The score a gradient method explains, per prompt: `similarity` [P] (logits or cosines of
// `image_features` [P or 1, E] with the prompts) minus, with a contrast, the same similarity to
// the contrast text (scaled by `scale`: exp(logit_scale) for logits, 1 for cosines).
torch::Tensor explained_score(const torch::Tensor& similarity, const torch::Tensor& image_features,
                              const torch::Tensor& contrast, double scale);

// Throws Error(Usage) for no prompts, Error(Input) for a prompt that does not fit the model (too
// long, ids outside its vocabulary, an end-of-text slot outside its ids), Error(Internal) for a
// request whose first blocks lie outside the towers. `timings`, when given, is charged with the
// text phase.
// `contrast`, when given, is tokenised for this model like the prompts.
PreparedText prepare_text(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                          const TraceRequest& request, Timings* timings = nullptr,
                          const TokenizedText* contrast = nullptr);

// `image`: one image's states (prepare_images with text.request, a batch of one). `timings`, when
// given, is charged with the vision, text and relevance (backward) phases.
ForwardTrace trace_forward(const ClipModel& model, const ImageStates& image,
                           const PreparedText& text, Timings* timings = nullptr);

// A PhaseTimer that first waits for the device: GPU kernels run asynchronously, and their time
// belongs to the phase that launched them.
class DevicePhaseTimer {
 public:
  DevicePhaseTimer(Timings* timings, Phase phase, const torch::Device& device);
  ~DevicePhaseTimer();
  DevicePhaseTimer(const DevicePhaseTimer&) = delete;
  DevicePhaseTimer& operator=(const DevicePhaseTimer&) = delete;

 private:
  PhaseTimer timer_;
  bool synchronize_;
  int64_t device_index_;
};

}  // namespace clipxai
