// Corpus BLEU (Papineni et al. 2002) as sacreBLEU computes it, for the translation study (issue 16)
// and the scalpel-bleu command.
//
//   BleuScore s = corpus_bleu(hyps, {refs}, BleuOptions());   // refs[r][i]: reference r of sentence i
//   std::cout << s.format();   // "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len =
//   18)"
//
// Per n = 1..4: matches_n = Σ over sentences of the clipped n-gram matches (each hypothesis n-gram
// counted at most as often as in the reference that has it most often), totals_n = Σ max(len − n +
// 1, 0). p_n = matches_n / totals_n. Brevity penalty BP = exp(1 − r/c) when c < r (c = hypothesis
// length, r = the sum over sentences of the reference length closest to the hypothesis', shorter
// on ties), else 1; BP = 0 for an empty output. BLEU = 100 · BP · exp(mean_n log p_n).
// Smoothing of a zero p_n (sacreBLEU's names): exp (default: the k-th zero becomes 1/(2^k totals_n)),
// floor (value/totals_n, value 0.1), add-k (n > 1: (matches+k)/(totals+k), k 1), none (a zero p_n
// gives BLEU 0). When totals_n is 0 (every hypothesis shorter than n), p_n is 0 and BLEU 0, as in
// sacreBLEU without effective order.
// Tokenisation: whitespace (default) or 13a (mteval-v13a, sacreBLEU's default: punctuation split
// off, except periods and commas inside numbers and dashes after digits).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace scalpel {
namespace experiments {

enum class BleuTokenize { Whitespace, Mteval13a };
enum class BleuSmooth { Exp, Floor, AddK, None };

struct BleuOptions {
  BleuTokenize tokenize = BleuTokenize::Whitespace;
  BleuSmooth smooth = BleuSmooth::Exp;
  double smooth_value = -1;  // floor: 0.1, add-k: 1 when negative
};

struct BleuScore {
  double score = 0;                    // 0..100
  std::array<double, 4> precisions{};  // 0..100, after smoothing
  std::array<long long, 4> matches{}, totals{};
  double bp = 0, ratio = 0;
  long long hyp_len = 0, ref_len = 0;
  // sacreBLEU's one-line summary.
  std::string format() const;
};

// "none"/"whitespace" or "13a"; "exp", "floor", "add-k", "none". Throw std::invalid_argument naming
// the value and the choices.
BleuTokenize bleu_tokenize_from_string(const std::string& s);
BleuSmooth bleu_smooth_from_string(const std::string& s);

std::vector<std::string> bleu_tokens(const std::string& line, BleuTokenize tokenize);

// refs[r] is one reference stream, as long as hyps. Throws std::invalid_argument when a stream's
// length differs from the hypotheses' (naming both counts) or there is no reference stream.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& options = BleuOptions());

}  // namespace experiments
}  // namespace scalpel
