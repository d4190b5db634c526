// `clipxai check [OPTIONS] BASELINE CANDIDATE` and `clipxai merge OUT INPUT...` (check.h).
#include <iostream>

#include "clipxai/check.h"
#include "clipxai/cli.h"
#include "clipxai/error.h"

namespace clipxai {

CLI::App* add_check_command(CLI::App& app, CheckOptions& options) {
  CLI::App* command = app.add_subcommand(
      "check", "Compare two runs' explanations pair by pair; exit 1 when any differs.");
  command->footer(
      R"(Each run is an `explain --json` document or an --out directory (its results.jsonl).
Pairs are (image, prompt); a pair differs when a metric is outside its tolerance, and a pair
present in only one run fails as missing. A different "method" header fails too.
Exit codes: 0 within tolerance; 1 anything differs or is missing; 2 unreadable inputs.

Examples:
  clipxai check baseline.json candidate.json
  clipxai check --min-pearson 0.999 --json report.json baseline-out/ candidate-out/
)");
  command->add_option("BASELINE", options.baseline, "The reference run")
      ->required()
      ->type_name("RUN");
  command->add_option("CANDIDATE", options.candidate, "The run to check")
      ->required()
      ->type_name("RUN");
  CheckTolerances& tolerances = options.tolerances;
  command
      ->add_option("--min-pearson", tolerances.min_pearson,
                   "Least Pearson correlation of the two grids")
      ->capture_default_str()
      ->type_name("X");
  command
      ->add_option("--max-grid-diff", tolerances.max_grid_diff,
                   "Largest difference of the min-max normalised grids")
      ->capture_default_str()
      ->type_name("X");
  command
      ->add_option("--min-top-overlap", tolerances.min_top_overlap,
                   "Least IoU of the grids' top-20% cells")
      ->capture_default_str()
      ->type_name("X");
  command
      ->add_option("--max-logit-diff", tolerances.max_logit_diff,
                   "Largest logit difference, relative to max(1, |baseline logit|)")
      ->capture_default_str()
      ->type_name("X");
  command
      ->add_option("--max-token-diff", tolerances.max_token_diff,
                   "Largest difference of a token's relevance")
      ->capture_default_str()
      ->type_name("X");
  command
      ->add_option("--json", options.json_path,
                   "Also write the comparison as JSON to this file ('-' = standard output, "
                   "instead of the table)")
      ->type_name("PATH");
  return command;
}

CLI::App* add_merge_command(CLI::App& app, MergeOptions& options) {
  CLI::App* command = app.add_subcommand(
      "merge", "Join the runs of a sharded job into the document an unsharded run writes.");
  command->footer(
      R"(Each INPUT is a run's --out directory (results.jsonl and run.json) or JSON document.

Example:
  clipxai merge all.json shard-1/ shard-2/ shard-3/
)");
  command->add_option("OUT", options.output, "Merged JSON document ('-' = standard output)")
      ->required()
      ->type_name("PATH");
  command->add_option("INPUT", options.inputs, "The runs to join")->required()->type_name("RUN");
  return command;
}

int run_merge_command(const MergeOptions& options) {
  run_merge(options.output, options.inputs, std::cout);
  return kExitOk;
}

}  // namespace clipxai
