#include "experiments/translation/bleu.h"

#include "data/parallel.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <regex>
#include <stdexcept>

namespace scalpel {
namespace experiments {

namespace {

// mteval-v13a's tokenizer, as sacreBLEU's "13a".
std::string tokenize_13a(std::string line) {
  static const std::regex skipped("<skipped>"), hyphen_nl("-\\n"), nl("\\n");
  line = std::regex_replace(line, skipped, "");
  line = std::regex_replace(line, hyphen_nl, "");
  line = std::regex_replace(line, nl, " ");
  if (line.find('&') != std::string::npos) {
    static const std::vector<std::pair<std::regex, std::string>> entities = {
        {std::regex("&quot;"), "\""}, {std::regex("&amp;"), "&"}, {std::regex("&lt;"), "<"}, {std::regex("&gt;"), ">"}};
    for (const auto& [re, s] : entities) line = std::regex_replace(line, re, s);
  }
  line = " " + line + " ";
  static const std::regex punct("([\\{-\\~\\[-\\` -\\&\\(-\\+\\:-\\@\\/])"), period_comma_a("([^0-9])([\\.,])"),
      period_comma_b("([\\.,])([^0-9])"), dash("([0-9])(-)");
  line = std::regex_replace(line, punct, " $1 ");
  line = std::regex_replace(line, period_comma_a, "$1 $2 ");
  line = std::regex_replace(line, period_comma_b, " $1 $2");
  line = std::regex_replace(line, dash, "$1 $2 ");
  return line;
}

using Counts = std::map<std::string, int>;  // n-gram (tokens joined by '\x01') -> count

Counts ngrams(const std::vector<std::string>& tok, size_t n) {
  Counts c;
  for (size_t i = 0; i + n <= tok.size(); ++i) {
    std::string key = tok[i];
    for (size_t j = 1; j < n; ++j) key += '\x01' + tok[i + j];
    ++c[key];
  }
  return c;
}

}  // namespace

BleuTokenize bleu_tokenize_from_string(const std::string& s) {
  if (s == "none" || s == "whitespace") return BleuTokenize::Whitespace;
  if (s == "13a") return BleuTokenize::Mteval13a;
  throw std::invalid_argument("tokenize: '" + s + "' is not a tokenizer (expected none, whitespace or 13a)");
}

BleuSmooth bleu_smooth_from_string(const std::string& s) {
  if (s == "exp") return BleuSmooth::Exp;
  if (s == "floor") return BleuSmooth::Floor;
  if (s == "add-k") return BleuSmooth::AddK;
  if (s == "none") return BleuSmooth::None;
  throw std::invalid_argument("smooth: '" + s + "' is not a smoothing method (expected exp, floor, add-k or none)");
}

std::vector<std::string> bleu_tokens(const std::string& line, BleuTokenize tokenize) {
  return data::split_words(tokenize == BleuTokenize::Mteval13a ? tokenize_13a(line) : line);
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& o) {
  if (refs.empty()) throw std::invalid_argument("corpus_bleu: no reference stream");
  for (size_t r = 0; r < refs.size(); ++r) {
    if (refs[r].size() != hyps.size()) {
      throw std::invalid_argument("corpus_bleu: reference stream " + std::to_string(r + 1) + " has " +
                                  std::to_string(refs[r].size()) + " lines, the hypotheses " +
                                  std::to_string(hyps.size()));
    }
  }
  BleuScore s;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const std::vector<std::string> h = bleu_tokens(hyps[i], o.tokenize);
    std::vector<std::vector<std::string>> rs;
    for (const auto& stream : refs) rs.push_back(bleu_tokens(stream[i], o.tokenize));
    // Closest reference length, the shorter one on ties.
    long long best = -1;
    for (const auto& r : rs) {
      const long long len = static_cast<long long>(r.size()), hl = static_cast<long long>(h.size());
      if (best < 0 || std::llabs(len - hl) < std::llabs(best - hl) ||
          (std::llabs(len - hl) == std::llabs(best - hl) && len < best))
        best = len;
    }
    s.hyp_len += static_cast<long long>(h.size());
    s.ref_len += best;
    for (size_t n = 1; n <= 4; ++n) {
      const Counts hc = ngrams(h, n);
      Counts maxref;
      for (const auto& r : rs)
        for (const auto& [g, c] : ngrams(r, n)) maxref[g] = std::max(maxref[g], c);
      for (const auto& [g, c] : hc) {
        const auto it = maxref.find(g);
        if (it != maxref.end()) s.matches[n - 1] += std::min(c, it->second);
      }
      s.totals[n - 1] += h.size() >= n ? static_cast<long long>(h.size() - n + 1) : 0;
    }
  }
  const double value = o.smooth_value >= 0 ? o.smooth_value : (o.smooth == BleuSmooth::Floor ? 0.1 : 1.0);
  double smooth_exp = 1.0, log_sum = 0.0;
  bool zero = false;
  for (int n = 0; n < 4; ++n) {
    double m = static_cast<double>(s.matches[n]), t = static_cast<double>(s.totals[n]);
    if (o.smooth == BleuSmooth::AddK && n > 0) m += value, t += value;
    double p = 0.0;
    if (t > 0) {
      if (m > 0) {
        p = 100.0 * m / t;
      } else if (o.smooth == BleuSmooth::Exp) {
        smooth_exp *= 2;
        p = 100.0 / (smooth_exp * t);
      } else if (o.smooth == BleuSmooth::Floor) {
        p = 100.0 * value / t;
      }
    }
    s.precisions[n] = p;
    if (p > 0)
      log_sum += std::log(p / 100.0);
    else
      zero = true;
  }
  s.ratio = s.ref_len > 0 ? static_cast<double>(s.hyp_len) / static_cast<double>(s.ref_len) : 0.0;
  if (s.hyp_len < s.ref_len)
    s.bp = s.hyp_len > 0 ? std::exp(1.0 - static_cast<double>(s.ref_len) / s.hyp_len) : 0.0;
  else
    s.bp = 1.0;
  s.score = zero ? 0.0 : 100.0 * s.bp * std::exp(log_sum / 4.0);
  return s;
}

std::string BleuScore::format() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)", score,
                precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio, hyp_len, ref_len);
  return buf;
}

}  // namespace experiments
}  // namespace scalpel
