// The start-up environment every clipxai executable runs under (src/passive_environment.h): what
// is added to a given environment, and that a caller's own settings are kept.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "passive_environment.h"

namespace {

constexpr char kTunables[] =
    "GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:"
    "glibc.malloc.trim_threshold=4294967296";

// The environment clipxai_passive_environment makes of `given`; empty, with `unchanged` set, when
// it leaves the environment as it is (returns null).
std::vector<std::string> passive(std::vector<std::string> given, bool* unchanged) {
  std::vector<char*> envp;
  for (std::string& entry : given) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char** made = clipxai_passive_environment(envp.data());
  *unchanged = made == nullptr;
  std::vector<std::string> result;
  for (char** entry = made; entry != nullptr && *entry != nullptr; ++entry) {
    result.emplace_back(*entry);
  }
  std::free(made);
  return result;
}

TEST(PassiveEnvironment, AddsWhatTheCallerLeftUnset) {
  struct Case {
    const char* name;
    std::vector<std::string> given;
    bool unchanged;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"empty", {}, false, {"OMP_WAIT_POLICY=passive", "OPENBLAS_THREAD_TIMEOUT=4", kTunables}},
      {"others kept first",
       {"HOME=/root", "OMP_WAIT_POLICY_X=1"},
       false,
       {"HOME=/root", "OMP_WAIT_POLICY_X=1", "OMP_WAIT_POLICY=passive", "OPENBLAS_THREAD_TIMEOUT=4",
        kTunables}},
      {"caller's BLAS timeout",
       {"OPENBLAS_THREAD_TIMEOUT=10"},
       false,
       {"OPENBLAS_THREAD_TIMEOUT=10", "OMP_WAIT_POLICY=passive", kTunables}},
      {"caller's tunables",
       {"GLIBC_TUNABLES=glibc.malloc.check=3"},
       false,
       {"GLIBC_TUNABLES=glibc.malloc.check=3", "OMP_WAIT_POLICY=passive",
        "OPENBLAS_THREAD_TIMEOUT=4"}},
      {"empty tunables are the caller's",
       {"GLIBC_TUNABLES="},
       false,
       {"GLIBC_TUNABLES=", "OMP_WAIT_POLICY=passive", "OPENBLAS_THREAD_TIMEOUT=4"}},
      {"caller's policy: nothing changes", {"OMP_WAIT_POLICY=active", "A=1"}, true, {}},
      {"even an empty policy", {"OMP_WAIT_POLICY="}, true, {}},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.name);
    bool unchanged = false;
    EXPECT_EQ(passive(test.given, &unchanged), test.expected);
    EXPECT_EQ(unchanged, test.unchanged);
  }
}

}  // namespace
