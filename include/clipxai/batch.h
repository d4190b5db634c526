// Batch inputs: which images a run explains, under which names, with which prompts, and which
// share of them one process of a sharded job takes.
//
// The IMAGE argument is one of
//   FILE   that one file, whatever its extension (load_image decides whether it decodes);
//   DIR    every file below DIR, recursively, whose extension is jpg, jpeg, png, webp, bmp, tif
//          or tiff in any case. Names starting with '.' are skipped (hidden files, macOS "._x.jpg"
//          resource forks, clipxai's own temporary files), and so is `excluded_dir` (the run's
//          --out when it lies inside DIR). Symbolic links are followed; a link back to a directory
//          already being walked (a loop) is not entered again. Other files are ignored;
//   @LIST  the files named in the text file LIST, one path per line, relative to LIST's directory
//          or absolute. Blank lines and lines starting with '#' (after leading spaces) are
//          skipped; a trailing '\r' and surrounding spaces are removed.
// Listed files that are missing or undecodable are still inputs: they fail when loaded, so the
// run records them as errors instead of silently dropping them.
//
// Each input has a key: the name results, resume and merge know it by ("image" in the JSON).
//   FILE   the argument as given;
//   DIR    the path relative to DIR, with '/' separators ("cats/tabby.jpg");
//   @LIST  the line as written, lexically normalised ("./a//b.png" -> "a/b.png"),
// each as output.h's path_text writes it: a name that is not UTF-8 keeps its identity in JSON.
// Inputs come sorted by key in image_order_less order (check.h: std::filesystem::path order, so
// a folder's images come together, and a merged sharded run lists images as the unsharded run).
// Keys are unique; a list naming a file twice is a usage error.
//
// Outputs of an input go to --out/<output_base>__<prompt slug>.png (and .npy), mirroring the
// input tree: output_base is the key without its extension ("cats/tabby"), keeping the extension
// where two inputs of one directory share a stem ("cats/tabby.jpg", "cats/tabby.png"); for FILE
// it is the bare file stem; components that would leave --out (a root, "..") become "_root" and
// "_up". A file name longer than kMaxOutputBaseNameBytes is cut there, at a character boundary,
// ending in "~" and 16 hex digits of its hash, so every output name fits the file system's
// 255-byte limit. Two inputs whose output bases still coincide are a usage error.
//
// Shards: --shard K/N (1 <= K <= N) takes the inputs whose key hashes to K - 1 modulo N (64-bit
// FNV-1a of the key's bytes, mixed by MurmurHash3's finaliser). An image's shard depends on its
// key alone, so it stays in its shard when the folder gains or loses other images, and shards
// 1/N..N/N partition any input set; the shares are balanced statistically (within a few percent
// for thousands of images), not exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace clipxai {

// 255 bytes less "__", the longest prompt slug (output.h) and ".png".
inline constexpr size_t kMaxOutputBaseNameBytes = 255 - 2 - 64 - 4;

struct BatchInput {
  std::string path;         // where to read the file
  std::string key;          // stable name, see above
  std::string output_base;  // relative path under --out, without extension
};

// Throws Error(Usage) when the argument names nothing, a directory holds no images, LIST repeats
// a file, output bases collide, or the argument is `excluded_dir` itself; Error(Input) when a
// directory or LIST cannot be read. `excluded_dir` may be empty or not exist yet.
std::vector<BatchInput> enumerate_inputs(const std::string& argument,
                                         const std::string& excluded_dir = "");

// True when `name`'s extension is one a directory walk collects (case-insensitive).
bool has_image_extension(const std::string& name);

// Prompts of --texts-from: one per line, UTF-8 (a leading byte-order mark is ignored), surrounding
// whitespace and a trailing '\r' removed, blank lines skipped. Throws Error(Input) naming the file
// and line for invalid UTF-8, and when the file is unreadable.
std::vector<std::string> read_prompts_file(const std::string& path);

struct Shard {
  int index = 1;  // K, 1-based
  int count = 1;  // N
};

// Parses "K/N". Throws Error(Usage) unless K and N are decimal integers with 1 <= K <= N.
Shard parse_shard(const std::string& text);

uint64_t shard_hash(const std::string& key);
bool in_shard(const std::string& key, const Shard& shard);
// The inputs of `shard`, in their order.
std::vector<BatchInput> select_shard(const std::vector<BatchInput>& inputs, const Shard& shard);

}  // namespace clipxai
