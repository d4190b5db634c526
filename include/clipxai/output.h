// Output files: overlay PNGs, raw maps as .npy, and file names for prompts. Every file is written
// with write_file_atomically (atomic_file.h), so no reader ever sees a partial one.
//
// Raw maps (--save-raw) use NumPy's .npy format, version 1.0: the magic "\x93NUMPY", a header
// dict {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), } padded so the data starts
// at a multiple of 64 bytes, then the float32 values little-endian in row-major order (top row
// first). Lossless, and numpy.load() reads it.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

namespace clipxai {

// `value` as JSON text: nlohmann's dump(indent), or one line for indent -1. Never throws: strings
// that are not UTF-8 have their bad bytes written as U+FFFD. Every JSON document and line clipxai
// writes goes through it; file names are first made text by path_text, which loses nothing.
std::string json_text(const nlohmann::json& value, int indent = 2);

// A file name (any bytes but NUL) as UTF-8 text that tells it apart from every other name: a
// valid UTF-8 name is itself; in one that is not, each byte outside a valid character becomes
// \xhh (two lower-case hex digits) and each backslash \\, as Python's repr writes bytes. Batch
// keys (the "image" of results, resume and merge) and the output names derived from them are in
// this form, so a name such as "caf\xe9.jpg" keeps its identity across runs.
std::string path_text(const std::string& path);

// `rgb`: CV_8UC3 in RGB order. encode_png gives the file's bytes; write_png writes them.
std::string encode_png(const cv::Mat& rgb);
void write_png(const std::string& path, const cv::Mat& rgb);

// The .npy encoding of a 2-D tensor as float32 (see above).
std::string npy_bytes(const torch::Tensor& grid);
void write_npy(const std::string& path, const torch::Tensor& grid);

// A file-name-safe form of each prompt: lower-case ASCII letters and digits, other runs of
// characters as one '-', at most 64 characters; "prompt" when nothing is left (e.g. a prompt in
// another script). Prompts whose slugs collide get "-2", "-3", ... in order of appearance.
std::vector<std::string> unique_slugs(const std::vector<std::string>& prompts);

}  // namespace clipxai
