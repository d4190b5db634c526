// `clipxai info [MODEL] [--vocab V] [--json]`
#include <iostream>

#include <nlohmann/json.hpp>

#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/method.h"
#include "clipxai/model.h"
#include "clipxai/output.h"
#include "clipxai/relevance.h"
#include "clipxai/report.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

std::string rollout_description(const ModelConfig& config, const MethodDefaults& defaults) {
  const StartLayers start = resolve_start_layers({}, config, defaults);
  return "vision " + describe_layers(start.vision, config.vision_layers) + ", text " +
         describe_layers(start.text, config.text_layers) + " (the default; --start-layer and " +
         "--start-layer-text choose others)";
}

}  // namespace

nlohmann::json info_json(const ClipModel& model, const std::string& tokenizer_source,
                         const std::string& tokenizer_problem) {
  nlohmann::json description = model_json(model, tokenizer_source);
  description["format"] = model.format();
  description["fact_sources"] = model.fact_sources();
  // Each method with its parameters and, resolved for this model, its defaults.
  nlohmann::json method_list = nlohmann::json::array();
  for (const MethodInfo& info : methods()) {
    nlohmann::json parameters = nlohmann::json::array();
    for (const MethodParameter& parameter : info.parameters) {
      parameters.push_back({{"name", parameter.name}, {"description", parameter.description}});
    }
    method_list.push_back({{"name", info.name},
                           {"summary", info.summary},
                           {"parameters", std::move(parameters)},
                           {"defaults", create_method(info.name, nullptr, model)->description()}});
  }
  description["methods"] = method_list;
  if (!tokenizer_problem.empty()) {
    description["tokenizer"] = nullptr;
    description["tokenizer_error"] = tokenizer_problem;
  }
  return description;
}

CLI::App* add_info_command(CLI::App& app, InfoOptions& options) {
  CLI::App* command =
      app.add_subcommand("info", "Describe a model archive: architecture and tokenizer source.");
  command->footer(R"(Examples:
  clipxai info
  clipxai info --json ViT-B-32.pt
)");
  command->add_option("MODEL", options.model.model, kModelHelp)->type_name("PATH");
  add_model_options(*command, options.model, /*model_option=*/false);
  command->add_flag("--json", options.json, "Print the description as JSON");
  return command;
}

int run_info(const InfoOptions& options) {
  const ClipModel model = load_model(options.model);
  const ModelConfig& config = model.config();
  // A model without a vocabulary can still be described; an explicit --vocab must load.
  std::string tokenizer_source;
  std::string tokenizer_problem;
  try {
    tokenizer_source = load_tokenizer(options.model.vocab, model.embedded_vocabulary(),
                                      model.path(), config.vocab_size)
                           .source();
  } catch (const Error& error) {
    if (!options.model.vocab.empty() || error.category() != ErrorCategory::Model) throw;
    tokenizer_problem = error.what();
  }

  const nlohmann::json description = info_json(model, tokenizer_source, tokenizer_problem);
  if (options.json) {
    std::cout << json_text(description) << '\n';
    return kExitOk;
  }
  std::cout << "model:       " << model.path() << '\n'
            << "format:      " << model.format() << '\n'
            << "name:        " << config.name << '\n'
            << "image:       " << config.input_resolution << " px, patch " << config.patch_size
            << ", grid " << config.grid << "x" << config.grid << '\n'
            << "vision:      width " << config.vision_width << ", " << config.vision_layers
            << " layers, " << config.vision_heads << " heads\n"
            << "text:        width " << config.text_width << ", " << config.text_layers
            << " layers, " << config.text_heads << " heads, context " << config.context_length
            << ", vocabulary " << config.vocab_size << '\n'
            << "embedding:   " << config.embed_dim << '\n'
            << "activation:  " << to_string(config.activation) << '\n'
            << "rollout:     " << rollout_description(config, model.method_defaults()) << '\n'
            << "tokenizer:   "
            << (tokenizer_problem.empty() ? tokenizer_source : "none: " + tokenizer_problem) << '\n'
            << "facts from:\n";
  for (const auto& [fact, source] : model.fact_sources()) {
    std::cout << "  " << fact << ": " << source << '\n';
  }
  std::cout << "methods (--method NAME, --param NAME=VALUE):\n";
  for (const auto& method : description["methods"]) {
    std::cout << "  " << method["name"].get<std::string>() << ": "
              << method["summary"].get<std::string>() << '\n';
    for (const auto& parameter : method["parameters"]) {
      const std::string name = parameter["name"].get<std::string>();
      std::cout << "      " << name << " = " << json_text(method["defaults"][name], -1) << ": "
                << parameter["description"].get<std::string>() << '\n';
    }
  }
  return kExitOk;
}

}  // namespace clipxai
