// Running many images through the engine: decoding ahead on worker threads (prefetch.h), one
// image at a time on the caller's thread (after an optional step for a window of images
// together), the failure policy, progress and cancelling. Both
// `clipxai explain` (explain_job.h) and `clipxai eval` (eval.h) run their images through it.
//
// Failure policy: an Error(Input) from loading or processing one image (unreadable, truncated,
// not an image, a mask that does not fit) is that image's failure — reported to `failed` and
// counted — and the run goes on; any other exception (a usage error, a bug) stops the run and
// propagates. Cancelling is checked before each image: a cancelled run stops there, with the
// images so far processed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <vector>

#include "clipxai/error.h"
#include "clipxai/prefetch.h"

namespace clipxai {

struct BatchCallbacks {
  // After each image: how many were finished so far (failed ones included) and how many failed.
  std::function<void(size_t done, size_t failed)> progress;
  // Image `index` failed with `error` (an Error(Input)).
  std::function<void(size_t index, const Error& error)> failed;
  // True stops the run before the next image.
  std::function<bool()> cancel;
};

struct BatchOutcome {
  size_t done = 0;  // images finished, failed ones included
  size_t failed = 0;
  bool cancelled = false;
};

struct BatchRunOptions {
  // Decoding and preprocessing are cheap next to the model on CPU: two workers keep it fed and
  // leave the cores to LibTorch; four images ahead bound the memory whatever the folder's size.
  int decode_workers = 2;
  size_t images_ahead = 4;
  // Items taken from the prefetcher together and handed to `prepare_window` (run_batch) before
  // each is processed; at least 1. The workers load max(images_ahead, window) ahead, so up to
  // twice the window is held. Eight images put ViT-B/32's matrix products near their
  // large-batch speed (README, Performance).
  size_t window = 8;
};

// Loads items 0..count-1 with `load` on worker threads and hands each, in order, to `process` on
// the calling thread. With `prepare_window`, items are taken `options.window` at a time and the
// window's loaded items (those whose load failed left out) go to `prepare_window` together first
// (the model's batched work for several images). An exception from `prepare_window` stops the run,
// as it belongs to no one image.
template <typename Item>
BatchOutcome run_batch(
    size_t count, const std::function<Item(size_t index)>& load,
    const std::function<void(size_t index, Item& item)>& process, const BatchCallbacks& callbacks,
    const BatchRunOptions& options = {},
    const std::function<void(std::vector<Item*>& window)>& prepare_window = nullptr) {
  const size_t window = prepare_window ? std::max<size_t>(options.window, 1) : 1;
  OrderedPrefetcher<Item> prefetcher(count, load, options.decode_workers,
                                     std::max(options.images_ahead, window));
  BatchOutcome outcome;
  struct Taken {
    std::optional<Item> item;
    std::exception_ptr failure;
  };
  for (size_t first = 0; first < count; first += window) {
    if (callbacks.cancel && callbacks.cancel()) {
      outcome.cancelled = true;
      break;
    }
    std::vector<Taken> taken(std::min(window, count - first));
    std::vector<Item*> loaded;
    for (Taken& slot : taken) {
      try {
        slot.item = prefetcher.next();
        loaded.push_back(&*slot.item);
      } catch (...) {
        slot.failure = std::current_exception();
      }
    }
    if (prepare_window && !loaded.empty()) prepare_window(loaded);
    for (size_t k = 0; k < taken.size(); ++k) {
      // The window's first image was checked before the window was taken.
      if (k > 0 && callbacks.cancel && callbacks.cancel()) {
        outcome.cancelled = true;
        return outcome;
      }
      const size_t index = first + k;
      try {
        if (taken[k].failure) std::rethrow_exception(taken[k].failure);
        process(index, *taken[k].item);
      } catch (const Error& error) {
        if (error.category() != ErrorCategory::Input) throw;
        ++outcome.failed;
        if (callbacks.failed) callbacks.failed(index, error);
      }
      ++outcome.done;
      if (callbacks.progress) callbacks.progress(outcome.done, outcome.failed);
    }
  }
  return outcome;
}

}  // namespace clipxai
