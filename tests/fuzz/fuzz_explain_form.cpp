// The server's reading of a POST /api/explain form (server.h), with the sentence's phrases found
// by Link Grammar: the input is the form's fields, each "name=content", separated by NUL bytes.
#include "clipxai/server.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  static const PhraseParser parser;
  static const std::vector<ExampleImage> examples = {{"scene.png", "\x89PNG\r\n\x1a\n"}};
  const std::string bytes = fuzz::bytes_of(data, size);
  std::vector<FormField> fields;
  for (size_t start = 0; start <= bytes.size();) {
    size_t end = bytes.find('\0', start);
    if (end == std::string::npos) end = bytes.size();
    const std::string field = bytes.substr(start, end - start);
    const size_t equals = field.find('=');
    fields.push_back({field.substr(0, equals),
                      equals == std::string::npos ? "" : field.substr(equals + 1), "upload.png"});
    start = end + 1;
  }
  fuzz::expect_clean_outcome(
      [&] { parse_explain_form(fields, ServerLimits(), examples, &parser); });
  return 0;
}
