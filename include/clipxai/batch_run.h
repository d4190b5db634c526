// Running many images through the engine: decoding ahead on worker threads (prefetch.h), one
// image at a time on the caller's thread, the failure policy, progress and cancelling. Both
// `clipxai explain` (explain_job.h) and `clipxai eval` (eval.h) run their images through it.
//
// Failure policy: an Error(Input) from loading or processing one image (unreadable, truncated,
// not an image, a mask that does not fit) is that image's failure — reported to `failed` and
// counted — and the run goes on; any other exception (a usage error, a bug) stops the run and
// propagates. Cancelling is checked before each image: a cancelled run stops there, with the
// images so far processed.
#pragma once

#include <cstddef>
#include <functional>

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
};

// Loads items 0..count-1 with `load` on worker threads and hands each, in order, to `process` on
// the calling thread.
template <typename Item>
BatchOutcome run_batch(size_t count, const std::function<Item(size_t index)>& load,
                       const std::function<void(size_t index, Item& item)>& process,
                       const BatchCallbacks& callbacks, const BatchRunOptions& options = {}) {
  OrderedPrefetcher<Item> prefetcher(count, load, options.decode_workers, options.images_ahead);
  BatchOutcome outcome;
  for (size_t index = 0; index < count; ++index) {
    if (callbacks.cancel && callbacks.cancel()) {
      outcome.cancelled = true;
      break;
    }
    try {
      std::optional<Item> item = prefetcher.next();
      process(index, *item);
    } catch (const Error& error) {
      if (error.category() != ErrorCategory::Input) throw;
      ++outcome.failed;
      if (callbacks.failed) callbacks.failed(index, error);
    }
    ++outcome.done;
    if (callbacks.progress) callbacks.progress(outcome.done, outcome.failed);
  }
  return outcome;
}

}  // namespace clipxai
