#include "clipxai/output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <libdeflate.h>
#include <torch/torch.h>
#include <zlib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "clipxai/atomic_file.h"
#include "clipxai/error.h"
#include "clipxai/image.h"
#include "deflate_literals.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

class ScratchDir : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("clipxai_output_test_" + std::to_string(getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

using AtomicWrite = ScratchDir;

TEST_F(AtomicWrite, WritesAndReplacesLeavingNoTemporaryFile) {
  const std::string path = (dir_ / "result.json").string();
  write_file_atomically(path, "first");
  write_file_atomically(path, std::string("second\0binary", 13));
  EXPECT_EQ(read_file(path), std::string("second\0binary", 13));
  EXPECT_EQ(entries(), std::vector<std::string>{"result.json"});
}

TEST_F(AtomicWrite, FailureNamesThePathAndLeavesNothing) {
  const std::string path = (dir_ / "missing" / "out.png").string();
  try {
    write_file_atomically(path, "data");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicWrite, StreamedContentsReplaceTheFileOnlyWhenComplete) {
  const std::string path = (dir_ / "report.html").string();
  write_file_atomically(path, [](std::ostream& out) { out << "old page"; });
  EXPECT_THROW(write_file_atomically(path,
                                     [](std::ostream& out) {
                                       out << "half a new page";
                                       throw Error(ErrorCategory::Input, "record unreadable");
                                     }),
               Error);
  EXPECT_EQ(read_file(path), "old page");
  EXPECT_EQ(entries(), std::vector<std::string>{"report.html"});
}

TEST_F(AtomicWrite, FollowsSymbolicLinksAndKeepsThem) {
  fs::create_directories(dir_ / "docs");
  std::ofstream(dir_ / "docs" / "target.json") << "old";
  fs::create_symlink("docs/target.json", dir_ / "link.json");
  fs::create_symlink("docs/new.json", dir_ / "dangling.json");
  fs::create_symlink("chain.json", dir_ / "loop.json");
  fs::create_symlink("loop.json", dir_ / "chain.json");
  write_file_atomically((dir_ / "link.json").string(), "through the link");
  write_file_atomically((dir_ / "dangling.json").string(), "created at the target");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.json"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "dangling.json"));
  EXPECT_EQ(read_file(dir_ / "docs" / "target.json"), "through the link");
  EXPECT_EQ(read_file(dir_ / "docs" / "new.json"), "created at the target");
  EXPECT_THROW(write_file_atomically((dir_ / "loop.json").string(), "x"), Error);
  EXPECT_TRUE(fs::is_symlink(dir_ / "loop.json"));
}

TEST_F(AtomicWrite, WritesThroughDevicesAndFifosAndRefusesDirectories) {
  write_file_atomically("/dev/null", "discarded");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  try {
    write_file_atomically("/dev/full", "no room");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "cannot write /dev/full: No space left on device");
  }
  const fs::path fifo = dir_ / "pipe";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] { received = read_file(fifo); });
  write_file_atomically(fifo.string(), "through the pipe");
  reader.join();
  EXPECT_EQ(received, "through the pipe");
  EXPECT_TRUE(fs::is_fifo(fifo));
  fs::create_directories(dir_ / "folder");
  try {
    write_file_atomically((dir_ / "folder").string(), "x");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot write " + (dir_ / "folder").string() + ": is a directory");
  }
}

TEST_F(AtomicWrite, AFolderThatTakesNoNewFileIsNamed) {
  try {
    write_file_atomically("/proc/version", "x");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot write /proc/version: cannot create a file in /proc (No such file or "
              "directory)");
  }
}

TEST_F(AtomicWrite, RefusesOutputsThatAreProtectedFiles) {
  std::ofstream(dir_ / "input.png") << "pixels";
  fs::create_symlink("input.png", dir_ / "alias.png");
  fs::create_hard_link(dir_ / "input.png", dir_ / "hard.png");
  fs::create_directories(dir_ / "model");
  const std::vector<ProtectedFile> files = {{(dir_ / "input.png").string(), "an input image"},
                                            {(dir_ / "log.jsonl").string(), "the results log"},
                                            {(dir_ / "model").string(), "the model"},
                                            {"", "nothing"}};
  struct Case {
    std::string output;
    std::string message;  // empty: allowed
  };
  const std::string input = (dir_ / "input.png").string();
  const std::vector<Case> cases = {
      {input, "--json " + input + ": is an input image (" + input + "); write it somewhere else"},
      {(dir_ / "alias.png").string(), "is an input image"},
      {(dir_ / "hard.png").string(), "is an input image"},
      {(dir_ / "sub" / ".." / "input.png").string(), "is an input image"},
      {(dir_ / "log.jsonl").string(), "is the results log"},  // not written yet
      {(dir_ / "model" / "config.json").string(), "is inside the model"},
      {(dir_ / "other.json").string(), ""},
      {"/dev/null", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.output);
    try {
      refuse_overwriting("--json", c.output, files);
      EXPECT_EQ(c.message, "");
    } catch (const Error& error) {
      EXPECT_EQ(error.category(), ErrorCategory::Usage);
      ASSERT_NE(c.message, "");
      EXPECT_NE(std::string(error.what()).find(c.message), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(read_file(dir_ / "input.png"), "pixels");
}

TEST(PathText, ValidNamesStayAndOthersAreEscapedLosslessly) {
  struct Case {
    std::string path;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"photos/caf\xc3\xa9.jpg", "photos/caf\xc3\xa9.jpg"},  // valid UTF-8: unchanged
      {"a\\b.png", "a\\b.png"},
      {"caf\xe9.jpg", "caf\\xe9.jpg"},
      {"caf\xe9\\x.jpg", "caf\\xe9\\\\x.jpg"},       // a backslash in such a name is doubled
      {"\xc0\xaf", "\\xc0\\xaf"},                    // overlong '/'
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"},           // a surrogate
      {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},  // above U+10FFFF
      {"\xe2\x82", "\\xe2\\x82"},                    // cut short
      {"ok\xff\xc3\xa9", "ok\\xff\xc3\xa9"},         // valid characters kept beside bad bytes
  };
  for (const Case& c : cases) EXPECT_EQ(path_text(c.path), c.text) << c.path;
  EXPECT_NE(path_text("caf\xe9.jpg"), path_text("caf\xe8.jpg"));
}

using Png = ScratchDir;

TEST_F(Png, KeepsRgbOrder) {
  cv::Mat rgb(2, 3, CV_8UC3, cv::Scalar(255, 0, 0));  // red in RGB
  rgb.at<cv::Vec3b>(1, 2) = {0, 0, 255};              // blue in RGB
  const std::string path = (dir_ / "image.png").string();
  write_png(path, rgb);
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.size(), rgb.size());
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(bgr.at<cv::Vec3b>(1, 2), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(entries(), std::vector<std::string>{"image.png"});
}

// encode_png writes its own PNG (Paeth filter, literal-only deflate): every picture decodes, with
// libpng (the project's decoder) and OpenCV's, to exactly its pixels.
TEST(PngEncoding, DecodesToTheSamePixels) {
  cv::RNG random(7);
  const auto noise = [&](int rows, int cols) {
    cv::Mat rgb(rows, cols, CV_8UC3);
    random.fill(rgb, cv::RNG::UNIFORM, 0, 256);
    return rgb;
  };
  const auto gradient = [](int rows, int cols) {
    cv::Mat rgb(rows, cols, CV_8UC3);
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < cols; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, 128);
    }
    return rgb;
  };
  const struct {
    std::string name;
    cv::Mat rgb;
  } cases[] = {
      {"one pixel", noise(1, 1)},
      {"one row", noise(1, 17)},
      {"one column", noise(23, 1)},
      {"odd size noise", noise(37, 51)},
      {"uniform", cv::Mat(40, 30, CV_8UC3, cv::Scalar(12, 200, 7))},
      {"photo size gradient", gradient(480, 640)},
      {"photo size noise, several deflate blocks", noise(480, 640)},
      {"a view into a larger picture", noise(64, 64)(cv::Rect(3, 5, 41, 29))},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.name);
    const std::string png = encode_png(test.rgb);
    const DecodedImage decoded = decode_image(png, test.name);
    ASSERT_EQ(decoded.rgb.size(), test.rgb.size());
    EXPECT_EQ(cv::norm(decoded.rgb, test.rgb, cv::NORM_INF), 0);
    cv::Mat bgr = cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    EXPECT_EQ(cv::norm(rgb, test.rgb, cv::NORM_INF), 0);
    EXPECT_EQ(encode_png(test.rgb.clone()), png);  // the bytes depend on the pixels alone
  }
  EXPECT_THROW(encode_png(cv::Mat(2, 2, CV_8UC1)), Error);
  EXPECT_THROW(encode_png(cv::Mat()), Error);
}

// zlib_compress_literals: zlib's inflate and libdeflate's both give back every input, including
// the ones that test the Huffman codes' edges: nothing, one byte value (a code of two symbols),
// counts so skewed that the optimal code would be deeper than deflate's 15 bits, and inputs that
// span several blocks.
TEST(LiteralDeflate, InflatesToTheInput) {
  const auto compress = [](const std::string& input) {
    return zlib_compress_literals(reinterpret_cast<const unsigned char*>(input.data()),
                                  input.size());
  };
  std::mt19937 random(11);
  const auto bytes = [&](size_t size, int distinct) {
    std::string out(size, '\0');
    std::uniform_int_distribution<int> value(0, distinct - 1);
    for (char& c : out) c = static_cast<char>(value(random));
    return out;
  };
  // Byte k appears fib(k) times: an unlimited Huffman code for these is 23 bits deep.
  const auto fibonacci_counts = [] {
    std::string out;
    uint64_t previous = 1, current = 1;
    for (int value = 0; value < 24; ++value) {
      out.append(current, static_cast<char>(value));
      current += std::exchange(previous, current);
    }
    return out;
  };
  const struct {
    std::string name;
    std::string input;
  } cases[] = {
      {"empty", ""},
      {"one byte", "x"},
      {"zero bytes only", std::string(1000, '\0')},
      {"one value", std::string(300000, 'a')},
      {"two values", bytes(5000, 2)},
      {"every value, several blocks", bytes(400000, 256)},
      {"a block and one byte", bytes(131073, 7)},
      {"fibonacci counts", fibonacci_counts()},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.name);
    const std::string compressed = compress(test.input);

    std::string inflated(test.input.size() + 1, '\0');
    uLongf inflated_size = inflated.size();
    ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(inflated.data()), &inflated_size,
                         reinterpret_cast<const Bytef*>(compressed.data()), compressed.size()),
              Z_OK);
    EXPECT_EQ(inflated.substr(0, inflated_size), test.input);

    const std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> decompressor(
        libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
    size_t decompressed_size = 0;
    std::string decompressed(test.input.size() + 1, '\0');
    ASSERT_EQ(
        libdeflate_zlib_decompress(decompressor.get(), compressed.data(), compressed.size(),
                                   decompressed.data(), decompressed.size(), &decompressed_size),
        LIBDEFLATE_SUCCESS);
    EXPECT_EQ(decompressed.substr(0, decompressed_size), test.input);
    EXPECT_EQ(compress(test.input), compressed);
  }
  // Huffman coding shrinks what has few distinct values; it cannot shrink noise much, and must
  // not grow it by more than the block headers and a bit in the worst case.
  EXPECT_LT(compress(std::string(300000, 'a')).size(), 40000u);
  const std::string noise = bytes(400000, 256);
  EXPECT_LT(compress(noise).size(), noise.size() * 101 / 100);
}

// Reads back what npy_bytes writes, following the .npy 1.0 specification.
struct NpyContents {
  std::string header;
  size_t data_offset = 0;
  std::vector<float> values;
};

NpyContents parse_npy(const std::string& bytes) {
  NpyContents out;
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_length =
      static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  out.header = bytes.substr(10, header_length);
  out.data_offset = 10 + header_length;
  out.values.resize((bytes.size() - out.data_offset) / sizeof(float));
  std::memcpy(out.values.data(), bytes.data() + out.data_offset, out.values.size() * sizeof(float));
  return out;
}

TEST(Npy, RoundTripsFloat32RowMajor) {
  const torch::Tensor grid = torch::tensor({{0.1f, -2.5f, 3e-8f}, {1e30f, 0.0f, 7.0f}});
  const NpyContents npy = parse_npy(npy_bytes(grid));
  EXPECT_EQ(npy.header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u)
      << npy.header;
  EXPECT_EQ(npy.header.back(), '\n');
  EXPECT_EQ(npy.data_offset % 64, 0u);
  EXPECT_EQ(npy.values, (std::vector<float>{0.1f, -2.5f, 3e-8f, 1e30f, 0.0f, 7.0f}));
}

TEST(Npy, ConvertsOtherDtypesAndNonContiguousTensors) {
  const torch::Tensor grid = torch::arange(6, torch::kDouble).reshape({2, 3}).t();
  const NpyContents npy = parse_npy(npy_bytes(grid));
  EXPECT_NE(npy.header.find("'shape': (3, 2)"), std::string::npos);
  EXPECT_EQ(npy.values, (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

struct SlugCase {
  std::vector<std::string> prompts;
  std::vector<std::string> slugs;
};

class Slugs : public testing::TestWithParam<SlugCase> {};

TEST_P(Slugs, AreSafeAndUnique) { EXPECT_EQ(unique_slugs(GetParam().prompts), GetParam().slugs); }

INSTANTIATE_TEST_SUITE_P(
    Prompts, Slugs,
    testing::Values(SlugCase{{"girl", "a dog", "Desktop Computer!"},
                             {"girl", "a-dog", "desktop-computer"}},
                    SlugCase{{"../etc/passwd", "  spaced  out  ", "C:\\x*y?"},
                             {"etc-passwd", "spaced-out", "c-x-y"}},
                    SlugCase{{"猫", "🐶", "café"}, {"prompt", "prompt-2", "caf"}},
                    SlugCase{{"dog", "Dog", "dog!", "dog-2"}, {"dog", "dog-2", "dog-3", "dog-2-2"}},
                    SlugCase{{std::string(70, 'a') + " b"}, {std::string(64, 'a')}},
                    SlugCase{{std::string(63, 'a') + " b"}, {std::string(63, 'a')}}));

}  // namespace
}  // namespace clipxai
