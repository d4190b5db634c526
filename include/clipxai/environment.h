// What the executables take from the process and its surroundings, and the library never does
// by itself: the default model's location, the vocabulary's look-up places ($CLIPXAI_VOCAB, pip
// site directories), and the thread count. The command line (and any program that wants the same
// behaviour) calls these and hands the library explicit values.
#pragma once

#include <optional>
#include <string>

#include "clipxai/tokenizer.h"

namespace clipxai {

// The model clipxai uses when none is given (the bundled emoji CLIP, committed under models/).
// Looked for, in order: $CLIPXAI_MODEL (used as given), then this file in
//   <directory of the clipxai binary>/../models/
//   <directory of the clipxai binary>/../share/clipxai/models/
//   <source tree>/models/
inline constexpr const char* kDefaultModelFile = "clipxai-emoji-vit.pt";

// `explicit_path` when not empty, else the default model as above. Throws Error(Model) listing
// every place looked when there is none.
std::string resolve_model_path(const std::string& explicit_path);

// The bundled example images' folder (examples/ of the source tree), looked for in the places
// the default model is; empty when there is none.
std::string bundled_examples_directory();

// `explicit_path` (--vocab), $CLIPXAI_VOCAB, and the site directories of $VIRTUAL_ENV,
// $CONDA_PREFIX, ~/.local, /usr/local/lib and /usr/lib, in that order.
VocabularySources vocabulary_sources(const std::string& explicit_path);

// load_tokenizer with vocabulary_sources(explicit_path).
Tokenizer load_tokenizer(const std::string& explicit_path,
                         const std::optional<VocabularyFiles>& embedded,
                         const std::string& model_path, int vocab_size);

// The cores this process may run on (its CPU affinity).
int available_cores();

// Sizes LibTorch's intra- and inter-op thread pools; 0 = one thread per core this process may
// run on. LibTorch allows the inter-op pool to be sized only once per process, before it is used.
void set_thread_count(int threads);

}  // namespace clipxai
