#include "deflate_literals.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

#include <libdeflate.h>

namespace clipxai {
namespace {

constexpr size_t kBlockBytes = size_t{1} << 17;
constexpr int kEndOfBlock = 256;
constexpr int kLiteralSymbols = 257;  // the byte values and the end of the block
constexpr int kMaxLiteralCodeLength = 15;
constexpr int kCodeLengthSymbols = 19;
constexpr int kMaxCodeLengthCodeLength = 7;
// The order in which a block header gives the code lengths of the code-length alphabet.
constexpr int kCodeLengthOrder[kCodeLengthSymbols] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                      11, 4,  12, 3, 13, 2, 14, 1, 15};

// Huffman code lengths for `counts`, none longer than `limit`; symbols counted zero get none.
// When the optimal code is deeper than `limit`, the counts are flattened (halved, rounding up)
// until it fits: the code stays complete, which inflaters require, for a little size. A lone
// symbol is paired with another so that the code is still complete.
std::vector<uint8_t> huffman_code_lengths(std::vector<uint64_t> counts, int limit) {
  std::vector<int> used;
  for (size_t symbol = 0; symbol < counts.size(); ++symbol) {
    if (counts[symbol] > 0) used.push_back(static_cast<int>(symbol));
  }
  std::vector<uint8_t> lengths(counts.size(), 0);
  if (used.size() < 2) {
    const int partner = !used.empty() && used[0] == 0 ? 1 : 0;
    if (!used.empty()) lengths[used[0]] = 1;
    lengths[partner] = 1;
    return lengths;
  }
  for (;;) {
    // Nodes 0..n-1 are the used symbols, then one per merge; ties break on the node's number,
    // so the code depends on the counts alone.
    const size_t n = used.size();
    std::vector<size_t> parent(2 * n - 1, 0);
    using Entry = std::pair<uint64_t, size_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
    for (size_t i = 0; i < n; ++i) queue.emplace(counts[used[i]], i);
    for (size_t next = n; queue.size() > 1; ++next) {
      const Entry first = queue.top();
      queue.pop();
      const Entry second = queue.top();
      queue.pop();
      parent[first.second] = parent[second.second] = next;
      queue.emplace(first.first + second.first, next);
    }
    std::vector<int> depth(2 * n - 1, 0);
    int deepest = 0;
    for (size_t node = 2 * n - 2; node-- > 0;) {
      depth[node] = depth[parent[node]] + 1;
      if (node < n) deepest = std::max(deepest, depth[node]);
    }
    if (deepest <= limit) {
      for (size_t i = 0; i < n; ++i) lengths[used[i]] = static_cast<uint8_t>(depth[i]);
      return lengths;
    }
    for (int symbol : used) counts[symbol] = (counts[symbol] + 1) / 2;
  }
}

// The canonical code of RFC 1951 section 3.2.2 for `lengths`, each code's bits reversed: deflate
// writes Huffman codes from their first bit, into bytes filled from the lowest bit.
std::vector<uint16_t> canonical_codes(const std::vector<uint8_t>& lengths) {
  std::array<uint16_t, kMaxLiteralCodeLength + 1> next{};
  std::array<uint16_t, kMaxLiteralCodeLength + 1> count{};
  for (uint8_t length : lengths) ++count[length];
  count[0] = 0;
  for (int bits = 1; bits <= kMaxLiteralCodeLength; ++bits) {
    next[bits] = static_cast<uint16_t>((next[bits - 1] + count[bits - 1]) << 1);
  }
  std::vector<uint16_t> codes(lengths.size(), 0);
  for (size_t symbol = 0; symbol < lengths.size(); ++symbol) {
    const int length = lengths[symbol];
    if (length == 0) continue;
    uint16_t code = next[length]++;
    uint16_t reversed = 0;
    for (int bit = 0; bit < length; ++bit, code >>= 1) {
      reversed = static_cast<uint16_t>(reversed << 1 | (code & 1));
    }
    codes[symbol] = reversed;
  }
  return codes;
}

// Bits into bytes, lowest first. `put` adds up to 56 bits in all between two `flush`es, which
// store the whole 64-bit buffer and advance by the bytes it completed: no branch per code, so
// the output pointer needs 8 bytes of slack past the end.
class BitWriter {
 public:
  explicit BitWriter(unsigned char* out) : out_(out) {}

  void put(uint32_t bits, int count) {
    buffer_ |= static_cast<uint64_t>(bits) << count_;
    count_ += count;
  }

  void flush() {
    std::memcpy(out_, &buffer_, 8);
    out_ += count_ >> 3;
    buffer_ >>= count_ & ~7;
    count_ &= 7;
  }

  // Pads the last byte with zero bits; returns the end of what was written.
  unsigned char* finish() {
    flush();
    if (count_ > 0) *out_++ = static_cast<unsigned char>(buffer_);
    count_ = 0;
    buffer_ = 0;
    return out_;
  }

 private:
  unsigned char* out_;
  uint64_t buffer_ = 0;
  int count_ = 0;
};

void write_block(BitWriter& bits, const unsigned char* data, size_t size, bool last) {
  std::array<std::vector<uint64_t>, 4> partial_counts;  // four tables: no store-to-load stalls
  for (auto& counts : partial_counts) counts.assign(kLiteralSymbols, 0);
  size_t i = 0;
  for (; i + 4 <= size; i += 4) {
    for (int lane = 0; lane < 4; ++lane) ++partial_counts[lane][data[i + lane]];
  }
  for (; i < size; ++i) ++partial_counts[0][data[i]];
  std::vector<uint64_t> counts(kLiteralSymbols, 0);
  for (const auto& partial : partial_counts) {
    for (int symbol = 0; symbol < kLiteralSymbols; ++symbol) counts[symbol] += partial[symbol];
  }
  counts[kEndOfBlock] = 1;
  const std::vector<uint8_t> lengths = huffman_code_lengths(counts, kMaxLiteralCodeLength);
  const std::vector<uint16_t> codes = canonical_codes(lengths);

  // The header lists the code lengths of the 257 literal symbols and of one distance code, of
  // length zero (none is used), each coded with the code-length alphabet's own Huffman code.
  std::vector<uint8_t> listed(lengths);
  listed.push_back(0);
  std::vector<uint64_t> length_counts(kCodeLengthSymbols, 0);
  for (uint8_t length : listed) ++length_counts[length];
  const std::vector<uint8_t> length_lengths =
      huffman_code_lengths(length_counts, kMaxCodeLengthCodeLength);
  const std::vector<uint16_t> length_codes = canonical_codes(length_lengths);
  int sent = kCodeLengthSymbols;
  while (sent > 4 && length_lengths[kCodeLengthOrder[sent - 1]] == 0) --sent;

  bits.put(last ? 1 : 0, 1);
  bits.put(2, 2);                                // dynamic Huffman codes
  bits.put(kLiteralSymbols - 257, 5);            // HLIT
  bits.put(0, 5);                                // HDIST: one distance code
  bits.put(static_cast<uint32_t>(sent - 4), 4);  // HCLEN
  bits.flush();
  for (int k = 0; k < sent; ++k) {
    bits.put(length_lengths[kCodeLengthOrder[k]], 3);
    bits.flush();
  }
  for (uint8_t length : listed) {
    bits.put(length_codes[length], length_lengths[length]);
    bits.flush();
  }
  // Three codes of at most 15 bits fit beside the 7 bits a flush may leave.
  size_t k = 0;
  for (; k + 3 <= size; k += 3) {
    bits.put(codes[data[k]], lengths[data[k]]);
    bits.put(codes[data[k + 1]], lengths[data[k + 1]]);
    bits.put(codes[data[k + 2]], lengths[data[k + 2]]);
    bits.flush();
  }
  for (; k < size; ++k) {
    bits.put(codes[data[k]], lengths[data[k]]);
    bits.flush();
  }
  bits.put(codes[kEndOfBlock], lengths[kEndOfBlock]);
  bits.flush();
}

}  // namespace

std::string zlib_compress_literals(const unsigned char* data, size_t size) {
  const size_t blocks = std::max<size_t>(1, (size + kBlockBytes - 1) / kBlockBytes);
  // At most: the 2-byte header; per block 17 header bits, 19 * 3 and 258 * 7 bits of code
  // lengths and a 15-bit end of block (under 256 bytes); 15 bits a byte; the last byte's padding
  // and the 4-byte checksum; and 8 bytes of slack for the writer's whole-buffer stores.
  std::string out(2 + blocks * 256 + (size * 15 + 7) / 8 + 1 + 4 + 8, '\0');
  auto* begin = reinterpret_cast<unsigned char*>(out.data());
  begin[0] = 0x78;  // deflate, 32 KiB window
  begin[1] = 0x01;  // fastest level; (0x78 << 8 | 0x01) is a multiple of 31
  BitWriter bits(begin + 2);
  for (size_t block = 0; block < blocks; ++block) {
    const size_t offset = block * kBlockBytes;
    const size_t length = std::min(kBlockBytes, size - offset);
    write_block(bits, data + offset, length, block + 1 == blocks);
  }
  unsigned char* end = bits.finish();
  const uint32_t adler = libdeflate_adler32(1, data, size);
  for (int shift = 24; shift >= 0; shift -= 8) *end++ = static_cast<unsigned char>(adler >> shift);
  out.resize(static_cast<size_t>(end - begin));
  return out;
}

}  // namespace clipxai
