// scalpel-bleu HYPOTHESES REFERENCES [REFERENCES...]: corpus BLEU of a system output against one
// or more reference files (one sentence a line, UTF-8), printed as sacreBLEU's command line does:
//   BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
// --tokenize none|13a (default none: whitespace), --smooth exp|floor|add-k|none (default exp),
// --smooth-value V, --json for a JSON object instead. Exit 2 on usage errors, unreadable files or
// files of different line counts (naming the files and the counts). Formulas: experiments/translation/bleu.h.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/translation/bleu.h"

using namespace scalpel::experiments;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> read_lines(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(std::string(what) + " file '" + path + "' cannot be read");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("scalpel-bleu: corpus BLEU of HYPOTHESES against REFERENCES (one sentence a line)");
  std::string hyp_path, tokenize = "none", smooth = "exp";
  std::vector<std::string> ref_paths;
  double smooth_value = -1;
  bool json = false;
  app.add_option("HYPOTHESES", hyp_path, "system output, one sentence a line")->required();
  app.add_option("REFERENCES", ref_paths, "one or more reference files, each line-aligned with HYPOTHESES")->required();
  app.add_option("--tokenize", tokenize, "none (whitespace, default) or 13a (mteval-v13a, sacreBLEU's default)");
  app.add_option("--smooth", smooth, "exp (default), floor, add-k or none");
  app.add_option("--smooth-value", smooth_value, "floor: epsilon (default 0.1); add-k: k (default 1)");
  app.add_flag("--json", json, "print a JSON object instead of the one-line summary");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "scalpel-bleu: " << e.what() << "\n" << app.help();
    return 2;
  }
  try {
    BleuOptions o;
    try {
      o.tokenize = bleu_tokenize_from_string(tokenize);
      o.smooth = bleu_smooth_from_string(smooth);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--") + e.what());
    }
    o.smooth_value = smooth_value;
    const std::vector<std::string> hyps = read_lines(hyp_path, "HYPOTHESES");
    std::vector<std::vector<std::string>> refs;
    for (const std::string& p : ref_paths) {
      refs.push_back(read_lines(p, "REFERENCES"));
      if (refs.back().size() != hyps.size()) {
        throw UsageError("REFERENCES file '" + p + "' has " + std::to_string(refs.back().size()) +
                         " lines but HYPOTHESES file '" + hyp_path + "' has " + std::to_string(hyps.size()) +
                         "; the files must be line-aligned");
      }
    }
    const BleuScore s = corpus_bleu(hyps, refs, o);
    if (json) {
      nlohmann::json j{{"score", s.score},     {"precisions", s.precisions}, {"bp", s.bp},
                       {"ratio", s.ratio},     {"hyp_len", s.hyp_len},       {"ref_len", s.ref_len},
                       {"matches", s.matches}, {"totals", s.totals},         {"tokenize", tokenize},
                       {"smooth", smooth}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << s.format() << "\n";
    }
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "scalpel-bleu: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "scalpel-bleu: " << e.what() << "\n";
    return 1;
  }
}
