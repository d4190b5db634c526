// Internal: a zlib stream (RFC 1950) whose deflate blocks (RFC 1951) hold literals only. Each
// block of up to 128 KiB gets its own Huffman code, fitted to that block's byte counts and at
// most 15 bits long; no string matching is tried. For PNG scanlines of photographs that went
// through the Paeth filter this is about as small as zlib's fastest level and several times
// faster (README, Performance): such data has few repeated strings, and what filtering leaves is
// mostly small differences, which the Huffman code takes in. Any inflater decodes it.
#pragma once

#include <cstddef>
#include <string>

namespace clipxai {

// `size` bytes at `data` (null when `size` is 0), compressed. The result depends on the bytes
// alone.
std::string zlib_compress_literals(const unsigned char* data, size_t size);

}  // namespace clipxai
