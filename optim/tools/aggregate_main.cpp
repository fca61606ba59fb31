// scalpel-aggregate: runs one named surgeon/aggregator on one gradient matrix and prints, as JSON,
// the direction d and the weights it chose.
//
//   scalpel-aggregate --method upgrad --input J.csv
//   echo '[[-4,1,1],[6,1,1]]' | scalpel-aggregate --method cagrad --set c=0.5
//
// Input: rows = tasks (T >= 1 rows of P numbers), CSV (comma- or space-separated, '#' comments) or
// JSON (an array of arrays, or {"matrix": [[...], ...]}), from --input PATH or stdin ("-" or no
// --input). The format is chosen by the first non-blank character ('[' or '{' is JSON).
// Output: {"method": ..., "options": ..., "direction": [P], "weights": [T] (methods that report
// them)}. Usage errors (unknown method, bad --set, unreadable input) print a message naming the
// flag and exit 2.
#include <CLI/CLI.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "optim/surgery/surgeon.h"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::vector<float>> parse_matrix(const std::string& text, const std::string& source) {
  std::vector<std::vector<float>> rows;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw UsageError("--input: " + source + " is empty (expected a gradient matrix)");
  if (text[first] == '[' || text[first] == '{') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw UsageError("--input: " + source + " is not valid JSON: " + e.what());
    }
    if (j.is_object()) {
      if (!j.contains("matrix")) throw UsageError("--input: " + source + ": a JSON object needs a \"matrix\" key");
      j = j["matrix"];
    }
    if (!j.is_array()) throw UsageError("--input: " + source + ": expected an array of rows");
    for (const auto& r : j) {
      if (!r.is_array()) throw UsageError("--input: " + source + ": every row must be an array of numbers");
      std::vector<float> row;
      for (const auto& x : r) {
        if (!x.is_number()) throw UsageError("--input: " + source + ": non-numeric entry " + x.dump());
        row.push_back(x.get<float>());
      }
      rows.push_back(row);
    }
  } else {
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      const size_t hash = line.find('#');
      if (hash != std::string::npos) line.resize(hash);
      for (char& c : line)
        if (c == ',' || c == ';' || c == '\t' || c == '\r') c = ' ';
      std::istringstream ls(line);
      std::vector<float> row;
      std::string tok;
      while (ls >> tok) {
        char* end = nullptr;
        const double v = std::strtod(tok.c_str(), &end);
        if (*end != '\0')
          throw UsageError("--input: " + source + " line " + std::to_string(lineno) + ": '" + tok +
                           "' is not a number");
        row.push_back(static_cast<float>(v));
      }
      if (!row.empty()) rows.push_back(row);
    }
  }
  if (rows.empty()) throw UsageError("--input: " + source + " has no rows");
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].size() != rows[0].size()) {
      throw UsageError("--input: " + source + ": row " + std::to_string(i) + " has " + std::to_string(rows[i].size()) +
                       " entries, row 0 has " + std::to_string(rows[0].size()));
    }
  }
  for (const auto& r : rows)
    for (float x : r)
      if (!std::isfinite(x)) throw UsageError("--input: " + source + ": non-finite entry");
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"scalpel-aggregate: one gradient aggregator on one gradient matrix (rows = tasks), JSON out"};
  std::string method, input = "-";
  std::vector<std::string> sets;
  app.add_option(
         "--method", method,
         "method name (" +
             [] {
               std::string s;
               for (const auto& n : scalpel::surgery::surgeon_names()) s += (s.empty() ? "" : ", ") + n;
               return s;
             }() +
             ")")
      ->required();
  app.add_option("--input", input, "CSV or JSON file with the gradient matrix, or - for stdin");
  app.add_option("--set", sets, "option key=value (repeatable), e.g. --set c=0.5");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    scalpel::surgery::SurgeonOptions opts;
    for (const auto& kv : sets) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw UsageError("--set: expected key=value, got '" + kv + "'");
      try {
        opts.set(kv.substr(0, eq), kv.substr(eq + 1));
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--set: ") + e.what());
      }
    }
    if (method == "rotograd") {
      throw UsageError(
          "--method rotograd: RotoGrad rotates the model's shared representation, so it cannot act on a gradient "
          "matrix; it is a module (nn/rotograd.h): use scalpel-multitask --methods rotograd (or --rotograd true with "
          "any method)");
    }
    std::unique_ptr<scalpel::surgery::Surgeon> s;
    try {
      s = scalpel::surgery::make_surgeon(method, opts);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--method ") + method + ": " + e.what());
    }
    std::string text;
    if (input == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream f(input);
      if (!f) throw UsageError("--input: cannot open '" + input + "'");
      text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    const auto rows = parse_matrix(text, input == "-" ? "stdin" : input);
    std::vector<scalpel::GradVector> g;
    for (const auto& r : rows) g.push_back(scalpel::GradVector::from_vector(r));
    scalpel::GradVector d;
    scalpel::surgery::SurgeryDiagnostics diag;
    try {
      s->combine(g, d, &diag);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--input: ") + e.what());
    }
    nlohmann::json out;
    out["method"] = s->name();
    out["options"] = opts.describe();
    out["direction"] = d.to_vector();
    out["weights"] = diag.weights;
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "scalpel-aggregate: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "scalpel-aggregate: " << e.what() << "\n";
    return 1;
  }
}
