// `clipxai tokenize [--model M | --vocab V] [--json] -- TEXT...`
#include <iostream>

#include <nlohmann/json.hpp>

#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/model.h"
#include "clipxai/output.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

// OpenAI's context length, used when only a vocabulary is given.
constexpr int kOpenAIContextLength = 77;

struct LoadedTokenizer {
  Tokenizer tokenizer;
  int context_length;
};

// --vocab alone: an OpenAI-sized vocabulary in OpenAI's context. Otherwise the model's (given or
// default) vocabulary size and context, with the vocabulary looked up as tokenizer.h describes.
LoadedTokenizer load_for(const TokenizeOptions& options) {
  const ModelOptions& given = options.model;
  if (given.model.empty() && !given.vocab.empty()) {
    return {load_tokenizer(given.vocab, std::nullopt, "", Tokenizer::kOpenAIVocabSize),
            kOpenAIContextLength};
  }
  const ClipModel model = load_model(given);
  const ModelConfig& config = model.config();
  return {load_tokenizer(given.vocab, model.embedded_vocabulary(), model.path(), config.vocab_size),
          config.context_length};
}

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

}  // namespace

CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& options) {
  CLI::App* command =
      app.add_subcommand("tokenize", "Show CLIP's BPE tokens and the full context ids of texts.");
  command->footer(
      R"(Put -- before the texts so that a text starting with '-' is not read as an option.
--vocab alone is taken as an OpenAI-sized vocabulary with a 77-slot context.

Examples:
  clipxai tokenize -- "a photo of a dog" "ＦＵＬＬＷＩＤＴＨ &amp; emoji 🐶"
  clipxai tokenize --vocab bpe_simple_vocab_16e6.txt.gz --json -- "a dog"
)");
  command
      ->add_option("--model", options.model.model,
                   "Use this model's vocabulary and context (default: the default model)")
      ->type_name("PATH");
  add_model_options(*command, options.model, /*model_option=*/false);

  command->add_flag("--json", options.json,
                    "Print a JSON array of {\"text\", \"ids\", \"tokens\", \"truncated\"}");
  command->add_option("TEXT", options.texts, "Texts to tokenize")->required();
  return command;
}

int run_tokenize(const TokenizeOptions& options) {
  const LoadedTokenizer loaded = load_for(options);
  std::vector<TokenizedText> tokenized;
  for (const std::string& text : options.texts) {
    tokenized.push_back(loaded.tokenizer.tokenize(text, loaded.context_length));
  }

  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const TokenizedText& text : tokenized) {
      out.push_back({{"text", text.text},
                     {"ids", text.ids},
                     {"tokens", text.tokens},
                     {"truncated", text.truncated}});
    }
    std::cout << json_text(out) << '\n';
    return kExitOk;
  }
  for (const TokenizedText& text : tokenized) {
    std::vector<std::string> ids;
    for (int64_t id : text.ids) ids.push_back(std::to_string(id));
    std::cout << '"' << text.text << '"'
              << (text.truncated ? "  [truncated to fit the context]" : "") << '\n'
              << "  tokens (" << text.tokens.size() << "): " << joined(text.tokens, " | ") << '\n'
              << "  ids (" << ids.size() << "): " << joined(ids, " ") << '\n';
  }
  return kExitOk;
}

}  // namespace clipxai
