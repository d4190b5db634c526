#include "clipxai/method.h"

#include "clipxai/error.h"

namespace clipxai {

#define CLIPXAI_METHOD(name) MethodInfo name##_method_info();
#include "methods.h"
#undef CLIPXAI_METHOD

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> registered = {
#define CLIPXAI_METHOD(name) name##_method_info(),
#include "methods.h"
#undef CLIPXAI_METHOD
  };
  return registered;
}

namespace {

std::string quoted(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::optional<int> integer_parameter(const MethodParameters& parameters, const std::string& method,
                                     const char* name) {
  if (!parameters.contains(name) || parameters[name].is_null()) return std::nullopt;
  const auto& value = parameters[name];
  if (!value.is_number_integer() || value.get<int64_t>() < -(1 << 20) ||
      value.get<int64_t>() > (1 << 20)) {
    throw usage_error("method " + method + ": " + name + " must be an integer, not " +
                      quoted(value));
  }
  return value.get<int>();
}

std::optional<std::string> choice_parameter(const MethodParameters& parameters,
                                            const std::string& method, const char* name,
                                            const std::vector<std::string>& choices) {
  if (!parameters.contains(name) || parameters[name].is_null()) return std::nullopt;
  const auto& value = parameters[name];
  std::string accepted;
  for (const std::string& choice : choices) {
    if (value.is_string() && value.get<std::string>() == choice) return choice;
    accepted += (accepted.empty() ? "" : ", ") + choice;
  }
  throw usage_error("method " + method + ": " + name + " must be one of " + accepted + ", not " +
                    quoted(value));
}

const std::string& default_method_name() { return methods().front().name; }

const MethodInfo& method_info(const std::string& name) {
  std::string names;
  for (const MethodInfo& info : methods()) {
    if (info.name == name) return info;
    names += (names.empty() ? "" : ", ") + info.name;
  }
  throw usage_error("--method " + name + ": unknown method (known: " + names + ")");
}

std::shared_ptr<const Method> create_method(const std::string& name,
                                            const MethodParameters& parameters,
                                            const ModelConfig& config,
                                            const MethodDefaults& defaults) {
  const MethodInfo* found = &method_info(name);
  if (parameters.is_null()) return found->create(MethodParameters::object(), config, defaults);
  if (!parameters.is_object()) {
    throw usage_error("method " + name + ": parameters must be a JSON object, not " +
                      quoted(parameters));
  }
  for (const auto& [key, value] : parameters.items()) {
    bool known = false;
    std::string accepted;
    for (const MethodParameter& parameter : found->parameters) {
      known |= parameter.name == key;
      accepted += (accepted.empty() ? "" : ", ") + parameter.name;
    }
    if (!known) {
      throw usage_error("method " + name + " has no parameter " + key +
                        " (its parameters: " + (accepted.empty() ? "none" : accepted) + ")");
    }
  }
  return found->create(parameters, config, defaults);
}

std::shared_ptr<const Method> create_method(const std::string& name,
                                            const MethodParameters& parameters,
                                            const ClipModel& model) {
  return create_method(name, parameters, model.config(), model.method_defaults());
}

}  // namespace clipxai
