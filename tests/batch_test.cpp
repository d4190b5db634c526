// Batch runs: input enumeration, prompt files, shards, the bounded prefetcher, results.jsonl
// (torn lines, resume, the streamed document) and progress formatting.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "clipxai/batch.h"
#include "clipxai/batch_run.h"
#include "clipxai/error.h"
#include "clipxai/output.h"
#include "clipxai/prefetch.h"
#include "clipxai/progress.h"
#include "clipxai/results_log.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("clipxai_batch_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Creates `relative` (and its directories) holding `contents`; returns its path.
  std::string write(const std::string& relative, const std::string& contents = "x") const {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }
  std::string path(const std::string& relative) const { return (root_ / relative).string(); }

  fs::path root_;
};

std::vector<std::string> keys_of(const std::vector<BatchInput>& inputs) {
  std::vector<std::string> keys;
  for (const BatchInput& input : inputs) keys.push_back(input.key);
  return keys;
}

std::vector<std::string> output_bases_of(const std::vector<BatchInput>& inputs) {
  std::vector<std::string> bases;
  for (const BatchInput& input : inputs) bases.push_back(input.output_base);
  return bases;
}

template <typename Function>
ErrorCategory category_thrown(Function function) {
  try {
    function();
  } catch (const Error& error) {
    return error.category();
  }
  ADD_FAILURE() << "no clipxai::Error thrown";
  return ErrorCategory::Internal;
}

template <typename Function>
std::string message_thrown(Function function) {
  try {
    function();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no clipxai::Error thrown";
  return "";
}

// ---- enumeration ----------------------------------------------------------------------------

using EnumerateTest = TempDir;

TEST_F(EnumerateTest, DirectoryListsImagesRecursivelyInPathOrder) {
  for (const char* file :
       {"b.PNG", "a/x.jpg", "a/y/z.TIFF", "a-b.webp", "a.bmp", "photo.jpeg", "scan.Tif",
        "notes.txt", "README", "c/data.json", ".hidden.png", ".cache/q.png", "a/._x.jpg"}) {
    write(file);
  }
  const std::vector<BatchInput> inputs = enumerate_inputs(root_.string());
  // Path order, component by component: "a/..." before "a-b" before "a.bmp".
  EXPECT_EQ(keys_of(inputs), (std::vector<std::string>{"a/x.jpg", "a/y/z.TIFF", "a-b.webp", "a.bmp",
                                                       "b.PNG", "photo.jpeg", "scan.Tif"}));
  EXPECT_EQ(output_bases_of(inputs),
            (std::vector<std::string>{"a/x", "a/y/z", "a-b", "a", "b", "photo", "scan"}));
  for (const BatchInput& input : inputs) EXPECT_EQ(fs::path(input.path), root_ / input.key);
}

TEST_F(EnumerateTest, SharedStemsKeepTheirExtensionInOutputNames) {
  for (const char* file : {"cat.jpg", "cat.png", "dog.jpg", "sub/cat.jpg"}) write(file);
  EXPECT_EQ(output_bases_of(enumerate_inputs(root_.string())),
            (std::vector<std::string>{"cat.jpg", "cat.png", "dog", "sub/cat"}));
}

TEST_F(EnumerateTest, NamesThatAreNotUtf8KeepTheirIdentityInKeysAndOutputNames) {
  const std::string latin1 = "caf\xe9";
  write(latin1 + "/" + latin1 + ".png");
  write(latin1 + "/cafe\xcc\x81.png");  // valid UTF-8, decomposed: kept as it is
  const std::vector<BatchInput> inputs = enumerate_inputs(root_.string());
  EXPECT_EQ(keys_of(inputs),
            (std::vector<std::string>{"caf\\xe9/caf\\xe9.png", "caf\\xe9/cafe\xcc\x81.png"}));
  EXPECT_EQ(output_bases_of(inputs),
            (std::vector<std::string>{"caf\\xe9/caf\\xe9", "caf\\xe9/cafe\xcc\x81"}));
  EXPECT_EQ(inputs[0].path, path(latin1 + "/" + latin1 + ".png"));
}

TEST_F(EnumerateTest, LongNamesGetShortOutputNamesThatStayDistinct) {
  const std::string stem(240, 'p');
  write(stem + "1.png");
  write(stem + "2.png");
  std::string accents = "x";  // two-byte characters from an odd offset: the cut falls inside one
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  write(accents + ".png");
  const std::vector<BatchInput> inputs = enumerate_inputs(root_.string());
  const std::vector<std::string> bases = output_bases_of(inputs);
  ASSERT_EQ(bases.size(), 3u);
  for (const std::string& base : bases) {
    EXPECT_LE(base.size(), kMaxOutputBaseNameBytes) << base;
    EXPECT_EQ(base[base.size() - 17], '~') << base;
  }
  EXPECT_EQ(bases[0].substr(0, 150), stem.substr(0, 150));
  EXPECT_NE(bases[0], bases[1]);
  EXPECT_EQ(keys_of(inputs)[0], stem + "1.png");                        // the key is the whole name
  EXPECT_EQ(output_bases_of(enumerate_inputs(root_.string())), bases);  // deterministic
  const std::string kept = bases[2].substr(0, bases[2].size() - 17);
  EXPECT_EQ(kept, accents.substr(0, kept.size()));
  EXPECT_EQ(path_text(kept), kept);  // whole characters only
  EXPECT_LT(kept.size(), kMaxOutputBaseNameBytes - 17);
}

TEST_F(EnumerateTest, FollowsLinksButNotLoops) {
  write("x.png");
  write("sub/y.png");
  fs::create_directory_symlink("..", root_ / "sub" / "loop");
  fs::create_directory_symlink("sub", root_ / "other");
  fs::create_symlink("x.png", root_ / "alias.png");
  fs::create_symlink("missing.png", root_ / "dangling.png");
  EXPECT_EQ(
      keys_of(enumerate_inputs(root_.string())),
      (std::vector<std::string>{"alias.png", "dangling.png", "other/y.png", "sub/y.png", "x.png"}));
}

TEST_F(EnumerateTest, SkipsTheExcludedDirectory) {
  write("in.png");
  write("out/in__a-dog.png");
  EXPECT_EQ(keys_of(enumerate_inputs(root_.string(), path("out"))),
            std::vector<std::string>{"in.png"});
  EXPECT_EQ(category_thrown([&] { enumerate_inputs(root_.string(), root_.string()); }),
            ErrorCategory::Usage);
}

TEST_F(EnumerateTest, DirectoryWithoutImagesIsAUsageError) {
  write("notes.txt");
  EXPECT_EQ(category_thrown([&] { enumerate_inputs(root_.string()); }), ErrorCategory::Usage);
}

TEST_F(EnumerateTest, FileIsOneInputKeyedAsGiven) {
  // Missing or undecodable files are still inputs: loading them fails and is recorded.
  for (const std::string& file : {path("pics/photo.jpg"), path("missing.webp")}) {
    const std::vector<BatchInput> inputs = enumerate_inputs(file);
    ASSERT_EQ(inputs.size(), 1u);
    EXPECT_EQ(inputs[0].path, file);
    EXPECT_EQ(inputs[0].key, file);
    EXPECT_EQ(inputs[0].output_base, fs::path(file).stem().string());
  }
}

TEST_F(EnumerateTest, ListResolvesLinesAgainstItsDirectory) {
  const std::string absolute = write("elsewhere/abs.png");
  const std::string list = write("lists/batch.txt",
                                 "# images for the test\r\n"
                                 "\n"
                                 "  imgs/a.png  \r\n"
                                 "./imgs/../b.jpg\n"
                                 "   # indented comment\n" +
                                     absolute + "\n" + "../up.png");
  const std::vector<BatchInput> inputs = enumerate_inputs("@" + list);
  const std::string absolute_key = fs::path(absolute).lexically_normal().generic_string();
  // Path order puts relative paths before absolute ones.
  EXPECT_EQ(keys_of(inputs),
            (std::vector<std::string>{"../up.png", "b.jpg", "imgs/a.png", absolute_key}));
  EXPECT_EQ(fs::path(inputs[0].path), root_ / "lists" / "../up.png");
  EXPECT_EQ(fs::path(inputs[2].path), root_ / "lists" / "imgs/a.png");
  EXPECT_EQ(fs::path(inputs[3].path), fs::path(absolute));
  EXPECT_EQ(
      output_bases_of(inputs),
      (std::vector<std::string>{"_up/up", "b", "imgs/a",
                                "_root" + fs::path(absolute_key).replace_extension().string()}));
}

TEST_F(EnumerateTest, ListErrors) {
  const struct {
    const char* name;
    std::string contents;
    ErrorCategory category;
    const char* message_part;
  } cases[] = {
      {"duplicate", "a.png\nb.png\n./a.png\n", ErrorCategory::Usage, "lines 1 and 3"},
      {"only comments", "# nothing\n\n", ErrorCategory::Usage, "names no images"},
      {"colliding outputs", "/r/a.png\n_root/r/a.png\n", ErrorCategory::Usage, "same place"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.name);
    const std::string list = write("list.txt", test.contents);
    EXPECT_EQ(category_thrown([&] { enumerate_inputs("@" + list); }), test.category);
    EXPECT_NE(message_thrown([&] { enumerate_inputs("@" + list); }).find(test.message_part),
              std::string::npos);
  }
  EXPECT_EQ(category_thrown([&] { enumerate_inputs("@" + path("missing.txt")); }),
            ErrorCategory::Input);
}

TEST(ImageExtension, CaseInsensitiveKnownExtensionsOnly) {
  const std::map<std::string, bool> cases{
      {"a.jpg", true}, {"a.JPEG", true},     {"a.Png", true},   {"a.webp", true},  {"a.BMP", true},
      {"a.tif", true}, {"a.tiff", true},     {"a.gif", false},  {"a.txt", false},  {"jpg", false},
      {"a.", false},   {"a.png.bak", false}, {"d/x.jpg", true}, {"a.jpgx", false},
  };
  for (const auto& [name, expected] : cases) EXPECT_EQ(has_image_extension(name), expected) << name;
}

// ---- prompts --------------------------------------------------------------------------------

using PromptsTest = TempDir;

TEST_F(PromptsTest, OnePromptPerNonBlankLine) {
  const std::string file = write("prompts.txt",
                                 "\xEF\xBB\xBF"
                                 "a dog\r\n\n   \n  a caf\xC3\xA9 \n# not a comment\nlast");
  EXPECT_EQ(read_prompts_file(file),
            (std::vector<std::string>{"a dog", "a caf\xC3\xA9", "# not a comment", "last"}));
}

TEST_F(PromptsTest, InvalidUtf8NamesTheLine) {
  const std::string file = write("prompts.txt", "a dog\n\na \xC3(\n");
  EXPECT_EQ(category_thrown([&] { read_prompts_file(file); }), ErrorCategory::Input);
  EXPECT_NE(message_thrown([&] { read_prompts_file(file); }).find("prompts.txt:3"),
            std::string::npos);
  EXPECT_EQ(category_thrown([&] { read_prompts_file(path("none.txt")); }), ErrorCategory::Input);
}

// ---- shards ---------------------------------------------------------------------------------

TEST(Shard, ParsesKOfN) {
  for (const auto& [text, index, count] : std::vector<std::tuple<std::string, int, int>>{
           {"1/1", 1, 1}, {"3/4", 3, 4}, {"16/16", 16, 16}, {"07/10", 7, 10}}) {
    const Shard shard = parse_shard(text);
    EXPECT_EQ(shard.index, index) << text;
    EXPECT_EQ(shard.count, count) << text;
  }
}

TEST(Shard, RejectsMalformedOrOutOfRange) {
  for (const char* text : {"0/4", "5/4", "1/0", "a/4", "1", "1/", "/4", "-1/4", "1/4/2", " 1/4",
                           "1/4 ", "+1/4", "10000000000/10000000000", ""}) {
    EXPECT_EQ(category_thrown([&] { parse_shard(text); }), ErrorCategory::Usage) << text;
  }
}

// Pinned so that every machine and every clipxai version splits a job the same way (values from
// an independent Python implementation of FNV-1a 64 + MurmurHash3's fmix64).
TEST(Shard, HashIsFixed) {
  const std::map<std::string, uint64_t> cases{
      {"", 0xefd01f60ba992926ull},
      {"a.png", 0x770c064753fcca9eull},
      {"cats/tabby.jpg", 0xcba717407c1b28baull},
      {"/data/x/y.tif", 0xc215b0472f76c10cull},
  };
  for (const auto& [key, hash] : cases) EXPECT_EQ(shard_hash(key), hash) << key;
}

TEST(Shard, SharesPartitionTheInputsAndIgnoreOtherInputs) {
  std::vector<BatchInput> inputs;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "dir" + std::to_string(i % 7) + "/img_" + std::to_string(i) + ".jpg";
    inputs.push_back({key, key, key});
  }
  for (const int count : {1, 2, 3, 7, 16}) {
    SCOPED_TRACE(count);
    std::multiset<std::string> covered;
    for (int index = 1; index <= count; ++index) {
      const std::vector<BatchInput> share = select_shard(inputs, {index, count});
      const double expected = 2000.0 / count;
      EXPECT_NEAR(share.size(), expected, 4 * std::sqrt(expected));  // binomial spread
      for (const BatchInput& input : share) covered.insert(input.key);
      // An image's shard does not depend on the other images.
      const std::vector<BatchInput> half(inputs.begin(), inputs.begin() + 1000);
      for (const BatchInput& input : select_shard(half, {index, count})) {
        EXPECT_TRUE(in_shard(input.key, {index, count}));
      }
    }
    EXPECT_EQ(covered.size(), inputs.size());
    for (const BatchInput& input : inputs) EXPECT_EQ(covered.count(input.key), 1u);
  }
}

// ---- prefetching ----------------------------------------------------------------------------

TEST(Prefetch, DeliversEveryItemInOrder) {
  OrderedPrefetcher<int> prefetcher(
      200,
      [](size_t index) {
        std::this_thread::sleep_for(std::chrono::microseconds((index * 7919) % 300));
        return static_cast<int>(index) * 3;
      },
      4, 8);
  for (int expected = 0; expected < 200; ++expected) {
    const std::optional<int> item = prefetcher.next();
    ASSERT_TRUE(item.has_value());
    EXPECT_EQ(*item, expected * 3);
  }
  EXPECT_FALSE(prefetcher.next().has_value());
  EXPECT_FALSE(prefetcher.next().has_value());
}

TEST(Prefetch, KeepsAtMostCapacityItemsAheadOfASlowConsumer) {
  for (const auto& [workers, capacity] :
       std::vector<std::pair<int, size_t>>{{1, 1}, {4, 3}, {3, 8}}) {
    SCOPED_TRACE(std::to_string(workers) + " workers, capacity " + std::to_string(capacity));
    std::atomic<int> ahead{0};  // started by a worker, not yet done with by the consumer
    std::atomic<int> most_ahead{0};
    OrderedPrefetcher<size_t> prefetcher(
        60,
        [&](size_t index) {
          const int now = ++ahead;
          int seen = most_ahead.load();
          while (now > seen && !most_ahead.compare_exchange_weak(seen, now)) {
          }
          return index;
        },
        workers, capacity);
    while (prefetcher.next()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      --ahead;
    }
    // The window plus the item the consumer holds; reached, so it does read ahead.
    EXPECT_EQ(most_ahead.load(), static_cast<int>(capacity) + 1);
  }
}

TEST(Prefetch, RethrowsALoadFailureInItsTurnAndGoesOn) {
  OrderedPrefetcher<int> prefetcher(
      4,
      [](size_t index) {
        if (index == 1) throw input_error("item 1 is broken");
        return static_cast<int>(index);
      },
      2, 2);
  EXPECT_EQ(prefetcher.next(), 0);
  EXPECT_EQ(message_thrown([&] { prefetcher.next(); }), "item 1 is broken");
  EXPECT_EQ(prefetcher.next(), 2);
  EXPECT_EQ(prefetcher.next(), 3);
  EXPECT_FALSE(prefetcher.next().has_value());
}

TEST(Prefetch, StopsEarlyWhenDestroyed) {
  std::atomic<int> loads{0};
  {
    OrderedPrefetcher<int> prefetcher(
        1000000, [&](size_t) { return ++loads; }, 3, 4);
    prefetcher.next();
    prefetcher.next();
  }
  EXPECT_LE(loads.load(), 2 + 4);
}

TEST(Prefetch, NeedsAWorkerAndASlot) {
  const auto load = [](size_t index) { return index; };
  EXPECT_EQ(category_thrown([&] { OrderedPrefetcher<size_t>(3, load, 0, 2); }),
            ErrorCategory::Internal);
  EXPECT_EQ(category_thrown([&] { OrderedPrefetcher<size_t>(3, load, 2, 0); }),
            ErrorCategory::Internal);
}

// run_batch with windows: each window's loaded items go to prepare_window together, then each
// item is processed in index order; an item that fails to load is left out of its window and
// reported in its turn; cancelling stops before the next item, inside a window too.
TEST(RunBatch, HandsWindowsOfLoadedItemsToPrepareThenProcessesInOrder) {
  const struct {
    std::string name;
    size_t count, window;
    std::set<size_t> load_fails;
    size_t cancel_after;  // items processed before cancel() says stop; count: never
    std::vector<std::vector<size_t>> windows;
    std::vector<std::string> events;
  } cases[] = {
      {"one at a time without prepare", 3, 1, {}, 3, {}, {"p0", "p1", "p2"}},
      {"windows of three, the last short",
       7,
       3,
       {},
       7,
       {{0, 1, 2}, {3, 4, 5}, {6}},
       {"p0", "p1", "p2", "p3", "p4", "p5", "p6"}},
      {"a failed load left out of its window",
       5,
       3,
       {1, 3},
       5,
       {{0, 2}, {4}},
       {"p0", "f1", "p2", "f3", "p4"}},
      {"a window of failures alone is not prepared",
       4,
       2,
       {0, 1},
       4,
       {{2, 3}},
       {"f0", "f1", "p2", "p3"}},
      {"cancelled inside a window", 7, 3, {}, 4, {{0, 1, 2}, {3, 4, 5}}, {"p0", "p1", "p2", "p3"}},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.name);
    std::vector<std::vector<size_t>> windows;
    std::vector<std::string> events;
    BatchCallbacks callbacks;
    callbacks.failed = [&](size_t index, const Error&) {
      events.push_back("f" + std::to_string(index));
    };
    callbacks.cancel = [&] { return events.size() >= test.cancel_after; };
    BatchRunOptions options;
    options.window = test.window;
    const std::function<size_t(size_t)> load = [&](size_t index) {
      if (test.load_fails.count(index) > 0) throw input_error("no " + std::to_string(index));
      return index;
    };
    const std::function<void(size_t, size_t&)> process = [&](size_t index, size_t& item) {
      EXPECT_EQ(index, item);
      events.push_back("p" + std::to_string(index));
    };
    std::function<void(std::vector<size_t*>&)> prepare;
    if (test.window > 1) {
      prepare = [&](std::vector<size_t*>& window) {
        windows.emplace_back();
        for (const size_t* item : window) windows.back().push_back(*item);
      };
    }
    const BatchOutcome outcome =
        run_batch<size_t>(test.count, load, process, callbacks, options, prepare);
    EXPECT_EQ(windows, test.windows);
    EXPECT_EQ(events, test.events);
    EXPECT_EQ(outcome.done, test.events.size());
    EXPECT_EQ(outcome.failed, test.load_fails.size());
    EXPECT_EQ(outcome.cancelled, test.cancel_after < test.count);
  }
}

// ---- results.jsonl --------------------------------------------------------------------------

using ResultsLogTest = TempDir;

json result_record(const std::string& image, const std::vector<std::string>& prompts,
                   const std::string& file_prefix) {
  json record{{"image", image}, {"width", 4}, {"height", 3}, {"prompts", json::array()}};
  for (const std::string& prompt : prompts) {
    record["prompts"].push_back({{"text", prompt},
                                 {"logit", 27.25},
                                 {"grid", {{static_cast<double>(0.1f), 2e-7}, {0.5, 1}}},
                                 {"overlay", file_prefix + prompt + ".png"},
                                 {"raw", nullptr}});
  }
  return record;
}

json error_record(const std::string& image) {
  return {{"image", image}, {"category", "input"}, {"message", image + ": not an image"}};
}

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST_F(ResultsLogTest, AppendedLinesAreIndexedAndSurviveAResume) {
  const std::string log_path = path("results.jsonl");
  {
    ResultsLog log = ResultsLog::create(log_path);
    log.append(error_record("a.png"));
    log.append(result_record("b.png", {"a dog"}, "out/b__"));
    log.append(result_record("a.png", {"a dog", "a cat"}, "out/a__"));  // a retry replaces
  }
  const std::string text = read_all(log_path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  const ResultsLog log = ResultsLog::resume(log_path);
  EXPECT_FALSE(log.dropped_torn_line());
  ASSERT_EQ(log.entries().size(), 3u);
  const LogEntry* a = log.latest("a.png");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->is_result);
  EXPECT_EQ(a->prompts, (std::vector<std::string>{"a dog", "a cat"}));
  EXPECT_EQ(a->files, (std::vector<std::string>{"out/a__a dog.png", "out/a__a cat.png"}));
  EXPECT_EQ(log.read_record(*a), result_record("a.png", {"a dog", "a cat"}, "out/a__"));
  EXPECT_EQ(log.latest("c.png"), nullptr);
}

// A run killed after writing a record but before its newline left a whole record: resuming keeps
// it (as `clipxai check` reads it) and ends the line before appending.
TEST_F(ResultsLogTest, ResumeKeepsAWholeLastRecordWithoutItsNewline) {
  const std::string log_path = path("results.jsonl");
  std::ofstream(log_path) << error_record("a.png").dump() << "\n" << error_record("b.png").dump();
  {
    ResultsLog log = ResultsLog::resume(log_path);
    EXPECT_FALSE(log.dropped_torn_line());
    EXPECT_EQ(log.entries().size(), 2u);
    log.append(error_record("c.png"));
    EXPECT_EQ(log.read_record(*log.latest("b.png")), error_record("b.png"));
  }
  std::istringstream lines(read_all(log_path));
  std::vector<std::string> images;
  for (std::string line; std::getline(lines, line);) images.push_back(json::parse(line)["image"]);
  EXPECT_EQ(images, (std::vector<std::string>{"a.png", "b.png", "c.png"}));
}

TEST_F(ResultsLogTest, ResumeCutsATornLastLine) {
  const std::string log_path = path("results.jsonl");
  {
    ResultsLog log = ResultsLog::create(log_path);
    log.append(error_record("a.png"));
    log.append(error_record("b.png"));
  }
  const std::string complete = read_all(log_path);
  std::ofstream(log_path, std::ios::app) << R"({"image": "c.png", "prom)";
  {
    ResultsLog log = ResultsLog::resume(log_path);
    EXPECT_TRUE(log.dropped_torn_line());
    EXPECT_EQ(log.entries().size(), 2u);
    EXPECT_EQ(read_all(log_path), complete);
    log.append(error_record("c.png"));
  }
  std::istringstream lines(read_all(log_path));
  std::vector<std::string> images;
  for (std::string line; std::getline(lines, line);) images.push_back(json::parse(line)["image"]);
  EXPECT_EQ(images, (std::vector<std::string>{"a.png", "b.png", "c.png"}));
}

TEST_F(ResultsLogTest, CreateReplacesAndResumeCreates) {
  const std::string log_path = path("results.jsonl");
  ResultsLog::create(log_path).append(error_record("a.png"));
  EXPECT_TRUE(ResultsLog::create(log_path).entries().empty());
  EXPECT_EQ(read_all(log_path), "");
  EXPECT_TRUE(ResultsLog::resume(path("fresh.jsonl")).entries().empty());
  EXPECT_TRUE(fs::exists(path("fresh.jsonl")));
}

TEST_F(ResultsLogTest, ACorruptCompleteLineIsAnError) {
  for (const std::string bad : {"not json", "[1, 2]", R"({"image": 3})"}) {
    const std::string log_path = write("results.jsonl", "{\"image\": \"a.png\"}\n" + bad + "\n");
    EXPECT_NE(message_thrown([&] { ResultsLog::resume(log_path); }).find("line 2"),
              std::string::npos)
        << bad;
  }
}

TEST_F(ResultsLogTest, OneRunAtATime) {
  const ResultsLog log = ResultsLog::create(path("results.jsonl"));
  EXPECT_EQ(category_thrown([&] { ResultsLog::create(path("results.jsonl")); }),
            ErrorCategory::Usage);
  EXPECT_EQ(category_thrown([&] { ResultsLog::resume(path("results.jsonl")); }),
            ErrorCategory::Usage);
}

TEST_F(ResultsLogTest, CompleteMeansSamePromptsAndFilesPresent) {
  const std::string prefix = path("out/a__");
  write("out/a__a dog.png");
  write("out/a__a cat.png");
  ResultsLog log = ResultsLog::create(path("results.jsonl"));
  log.append(result_record("a.png", {"a dog", "a cat"}, prefix));
  log.append(result_record("b.png", {"a dog", "a fox"}, prefix));  // a__a fox.png is missing
  log.append(error_record("c.png"));
  const std::vector<std::string> job{"a dog", "a cat"};
  EXPECT_TRUE(is_complete(*log.latest("a.png"), job));
  EXPECT_FALSE(is_complete(*log.latest("a.png"), {"a cat", "a dog"}));
  EXPECT_FALSE(is_complete(*log.latest("a.png"), {"a dog"}));
  EXPECT_FALSE(is_complete(*log.latest("b.png"), {"a dog", "a fox"}));
  EXPECT_FALSE(is_complete(*log.latest("c.png"), job));
  fs::remove(prefix + "a cat.png");
  EXPECT_FALSE(is_complete(*log.latest("a.png"), job));
}

TEST_F(ResultsLogTest, DocumentEqualsTheInMemoryDump) {
  const json header{{"clipxai_version", "0.1.0"},
                    {"model", {{"name", "tiny"}, {"image_mean", {0.48145466, 0.4578275}}}},
                    {"method", {{"name", "chefer"}, {"start_layer", 5}}}};
  ResultsLog log = ResultsLog::create(path("results.jsonl"));
  log.append(error_record("a.png"));
  log.append(result_record("b.png", {"a dog"}, "out/b__"));
  log.append(error_record("c.png"));
  log.append(result_record("a.png", {"a dog", "\xC3\xA9t\xC3\xA9 \"quoted\""}, "out/a__"));
  log.append(result_record("not-in-this-run.png", {"a dog"}, "out/x__"));

  const std::vector<std::string> images{"a.png", "b.png", "c.png", "d.png"};
  json expected = header;
  expected["results"] =
      json::array({log.read_record(*log.latest("a.png")), log.read_record(*log.latest("b.png"))});
  expected["errors"] = json::array({error_record("c.png")});
  std::ostringstream document;
  write_run_document(document, header, images, log);
  EXPECT_EQ(document.str(), expected.dump(2) + "\n");
  EXPECT_EQ(json::parse(document.str()), expected);
  EXPECT_EQ(count_latest(images, log, true), 2u);
  EXPECT_EQ(count_latest(images, log, false), 1u);
  json visited = json::array();
  visit_latest(images, log, true, [&](const json& record) { visited.push_back(record); });
  EXPECT_EQ(visited, expected["results"]);

  json empty = header;
  empty["results"] = json::array();
  empty["errors"] = json::array();
  std::ostringstream nothing;
  write_run_document(nothing, header, {"d.png"}, log);
  EXPECT_EQ(nothing.str(), empty.dump(2) + "\n");
}

// ---- progress -------------------------------------------------------------------------------

TEST(Progress, Durations) {
  const std::vector<std::pair<double, std::string>> cases{
      {0, "0s"},       {7.4, "7s"}, {59.6, "1m00s"}, {184, "3m04s"},   {3599.4, "59m59s"},
      {7500, "2h05m"}, {-1, "--"},  {NAN, "--"},     {INFINITY, "--"},
  };
  for (const auto& [seconds, text] : cases) EXPECT_EQ(format_duration(seconds), text) << seconds;
}

TEST(Progress, BarAndLine) {
  const struct {
    ProgressState state;
    const char* bar;
    const char* line;
  } cases[] = {
      {{1000, 412, 0, 2, 128.75},
       "[############------------------]   412/1000  41%  3.2 img/s  ETA 3m04s  2 failed",
       "clipxai: 412/1000 images (41%), 3.2 images/s, ETA 3m04s, 2 failed"},
      // Resumed: the rate counts only this process's images.
      {{1000, 412, 400, 0, 4},
       "[############------------------]   412/1000  41%  3.0 img/s  ETA 3m16s",
       "clipxai: 412/1000 images (41%), 3.0 images/s, ETA 3m16s"},
      {{50, 0, 0, 0, 0},
       "[------------------------------]   0/50  0%  -- img/s  ETA --",
       "clipxai: 0/50 images (0%), -- images/s, ETA --"},
      {{50, 50, 0, 50, 10},
       "[##############################]  50/50  100%  5.0 img/s  ETA 0s  50 failed",
       "clipxai: 50/50 images (100%), 5.0 images/s, ETA 0s, 50 failed"},
  };
  for (const auto& test : cases) {
    EXPECT_EQ(format_progress_bar(test.state), test.bar);
    EXPECT_EQ(format_progress_line(test.state), test.line);
  }
}

TEST(Progress, Styles) {
  EXPECT_EQ(progress_style(true, true), ProgressStyle::Quiet);
  EXPECT_EQ(progress_style(true, false), ProgressStyle::Quiet);
  EXPECT_EQ(progress_style(false, true), ProgressStyle::Bar);
  EXPECT_EQ(progress_style(false, false), ProgressStyle::Lines);
}

// Feeds one image per `step` and returns what the reporter wrote.
std::string report(ProgressStyle style, size_t total, std::chrono::milliseconds step) {
  std::ostringstream out;
  const auto start = ProgressReporter::Clock::time_point{};
  ProgressReporter reporter(style, total, 0, out, start);
  for (size_t done = 1; done <= total; ++done) reporter.update(done, 0, start + done * step);
  reporter.finish(start + total * step);
  return out.str();
}

TEST(Progress, LinesEveryTenSecondsPlusFirstAndLast) {
  const std::string text = report(ProgressStyle::Lines, 100, std::chrono::milliseconds(500));
  // At image 1 (0.5 s), then 21 (10.5 s), 41, 61, 81, and the final line.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("clipxai: 21/100 images"), std::string::npos);
  EXPECT_EQ(text.substr(text.rfind("clipxai:")),
            "clipxai: 100/100 images (100%), 2.0 images/s, ETA 0s\n");
}

TEST(Progress, BarRedrawsInPlaceAtMostTenTimesASecond) {
  const std::string text = report(ProgressStyle::Bar, 100, std::chrono::milliseconds(20));
  // 2 s of images: the first, one per 100 ms, the last (100/100 is due), and finish().
  const auto redraws = std::count(text.begin(), text.end(), '\r');
  EXPECT_GE(redraws, 20);
  EXPECT_LE(redraws, 23);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Progress, NotesGoAboveTheBar) {
  const auto start = ProgressReporter::Clock::time_point{};
  for (const ProgressStyle style : {ProgressStyle::Quiet, ProgressStyle::Lines}) {
    std::ostringstream out;
    ProgressReporter reporter(style, 10, 0, out, start);
    reporter.note("clipxai: b.png: not an image");
    EXPECT_EQ(out.str(), "clipxai: b.png: not an image\n");
  }
  std::ostringstream out;
  ProgressReporter reporter(ProgressStyle::Bar, 10, 0, out, start);
  reporter.update(1, 0, start + std::chrono::seconds(1));
  const std::string bar = out.str();
  reporter.note("clipxai: b.png: not an image");
  EXPECT_EQ(out.str(), bar + "\r\x1b[Kclipxai: b.png: not an image\n" + bar);
}

TEST(Progress, QuietPrintsNothing) {
  EXPECT_EQ(report(ProgressStyle::Quiet, 10, std::chrono::milliseconds(20000)), "");
}

}  // namespace
}  // namespace clipxai
