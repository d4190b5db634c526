// Explanation methods: what turns a forward trace (trace.h) into one relevance map per prompt and,
// where the method defines one, a relevance per text token.
//
// A method is made once per run from its parameters and the model it explains (create_method),
// says which trace it needs (trace_request), describes itself for the JSON document's "method"
// object (description: {"name": ..., parameter: value, ...} with every default resolved, so a
// saved run says exactly what was computed), and computes maps from traces (compute). Methods
// are registered by name in src/methods.h; `--method NAME` picks one.
//
// Parameters are a JSON object (null: none), name -> value; an absent name takes the method's default, which
// may come from the model (MethodDefaults). A name the method does not have, or a value it cannot
// use, is an Error(Usage) naming the method and the parameter.
//
// Adding a method: one src/method_<name>.cpp defining a MethodInfo `<name>_method_info()` (name,
// summary, parameters, factory) and one line in src/methods.h. Nothing else changes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "clipxai/model.h"
#include "clipxai/trace.h"

namespace clipxai {

using MethodParameters = nlohmann::json;

struct MethodMaps {
  // [P, G, G] float32: each prompt's raw map over the patch grid, top row first, before any
  // normalisation.
  torch::Tensor grids;
  // [P, T] float32 over the text slots (the trace's T), or undefined when the method defines no
  // token relevance. Explaining keeps the slots between SOT and EOT and normalises them to sum 1.
  torch::Tensor token_relevance;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual TraceRequest trace_request() const = 0;
  // {"name": "<registered name>-...", parameters...}: the settings with defaults resolved.
  virtual nlohmann::json description() const = 0;
  // The settings in a few words, for tables ("all layers (0-5)").
  virtual std::string label() const = 0;
  // `trace` comes from trace_forward with this method's trace_request(). Runs without autograd
  // unless the method turns it on (methods that differentiate their own targets).
  virtual MethodMaps compute(const ClipModel& model, const ForwardTrace& trace) const = 0;
  // Why the method cannot explain logit(prompt) - logit(contrast) (no gradient target), or
  // nullopt when it can.
  virtual std::optional<std::string> refuses_contrast() const { return std::nullopt; }
  // Whether the image map depends on the prompt (false: attention alone, one map per image).
  virtual bool prompt_specific() const { return true; }
};

struct MethodParameter {
  std::string name;
  std::string description;
};

struct MethodInfo {
  std::string name;  // what --method takes
  std::string summary;
  std::vector<MethodParameter> parameters;
  // Called with parameters already checked to be among `parameters`.
  std::unique_ptr<Method> (*create)(const MethodParameters& parameters, const ModelConfig& config,
                                    const MethodDefaults& defaults);
  // Whether unset parameters take the model's MethodDefaults (chefer2021's rollout depth).
  bool defaults_from_model = false;
};

// For factories: parameter `name` of method `method`, or nullopt when absent or null. Throws
// Error(Usage) naming both for a value of the wrong kind or outside `choices`.
std::optional<int> integer_parameter(const MethodParameters& parameters, const std::string& method,
                                     const char* name);
std::optional<std::string> choice_parameter(const MethodParameters& parameters,
                                            const std::string& method, const char* name,
                                            const std::vector<std::string>& choices);

// Every registered method, in registration order (the first is the default).
const std::vector<MethodInfo>& methods();
const std::string& default_method_name();
// The method registered as `name`. Throws Error(Usage) for an unknown name, listing the known.
const MethodInfo& method_info(const std::string& name);

// Throws Error(Usage) for an unknown name (listing the known ones), parameters that are not a
// JSON object, a parameter the method does not have, and whatever the method's factory refuses.
std::shared_ptr<const Method> create_method(const std::string& name,
                                            const MethodParameters& parameters,
                                            const ModelConfig& config,
                                            const MethodDefaults& defaults);
std::shared_ptr<const Method> create_method(const std::string& name,
                                            const MethodParameters& parameters,
                                            const ClipModel& model);

}  // namespace clipxai
