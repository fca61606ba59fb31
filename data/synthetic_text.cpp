// synthetic-text: two byte corpora from two different generators over one shared alphabet (see
// data/synthetic.h).
//
// Generic corpus: prose-like paragraphs. A vocabulary of 3000 pseudo-words built from soft
// syllables, Zipf(1.1) word frequencies, each word with 6 preferred successors (taken 40% of the
// time, uniform over the 1000 most frequent words), sentences of 4..24 words with commas, '.', '?' or '!' endings, 4..8
// sentences per paragraph, rare numbers. Specific corpus: record-like lines. 400 words, half shared with the generic
// vocabulary and half built from harsher syllables, Zipf(1.25) over its own ranking, 3 successors (uniform over its
// vocabulary) taken 60% of the time, "Key: w w 12 w; w w." lines of 2..8 words with frequent numbers, one line per
// record. Both emit only bytes of synthetic_text_alphabet().
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/random.h"
#include "data/synthetic.h"

namespace scalpel {
namespace data {

const std::string& synthetic_text_alphabet() {
  static const std::string a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:?!'-\n";
  return a;
}

namespace {

struct Zipf {
  std::vector<double> cdf;
  Zipf(int64_t n, double s) {
    double total = 0.0;
    for (int64_t k = 1; k <= n; ++k) {
      total += 1.0 / std::pow(static_cast<double>(k), s);
      cdf.push_back(total);
    }
    for (double& c : cdf) c /= total;
  }
  int64_t draw(Generator& g) const {
    const double u = g.uniform_double();
    return std::min<int64_t>(static_cast<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()),
                             static_cast<int64_t>(cdf.size()) - 1);
  }
};

std::string make_word(Generator& g, const std::string& cons, const std::string& vows, int min_syl, int max_syl) {
  const int syl = min_syl + static_cast<int>(g.randint(max_syl - min_syl + 1));
  std::string w;
  for (int s = 0; s < syl; ++s) {
    if (s > 0 || g.uniform() < 0.8f) w += cons[static_cast<size_t>(g.randint(static_cast<int64_t>(cons.size())))];
    w += vows[static_cast<size_t>(g.randint(static_cast<int64_t>(vows.size())))];
    if (g.uniform() < 0.2f) w += cons[static_cast<size_t>(g.randint(static_cast<int64_t>(cons.size())))];
  }
  return w;
}

std::vector<std::string> make_vocab(Generator& g, int64_t n, const std::string& cons, const std::string& vows, int lo,
                                    int hi) {
  std::vector<std::string> v;
  while (static_cast<int64_t>(v.size()) < n) {
    std::string w = make_word(g, cons, vows, lo, hi);
    if (std::find(v.begin(), v.end(), w) == v.end()) v.push_back(std::move(w));
  }
  return v;
}

// k preferred successors per word, uniform over the `pool` most frequent words.
std::vector<std::vector<int64_t>> make_successors(Generator& g, int64_t n, int64_t k, int64_t pool) {
  std::vector<std::vector<int64_t>> s(static_cast<size_t>(n));
  for (auto& row : s) {
    for (int64_t j = 0; j < k; ++j) row.push_back(g.randint(std::min(n, pool)));
  }
  return s;
}

std::string capitalise(std::string w) {
  if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 'a' + 'A');
  return w;
}

std::string number(Generator& g) { return std::to_string(g.randint(g.uniform() < 0.7f ? 100 : 10000)); }

std::vector<uint8_t> generic_corpus(Generator& g, const std::vector<std::string>& vocab, int64_t bytes) {
  const int64_t n = static_cast<int64_t>(vocab.size());
  const Zipf zipf(n, 1.1);
  const auto succ = make_successors(g, n, 6, 1000);
  std::string out;
  out.reserve(static_cast<size_t>(bytes + 256));
  int64_t prev = 0;
  while (static_cast<int64_t>(out.size()) < bytes) {
    const int64_t sentences = 4 + g.randint(5);
    for (int64_t s = 0; s < sentences; ++s) {
      const int64_t len = 4 + g.randint(21);
      for (int64_t w = 0; w < len; ++w) {
        int64_t id = (w > 0 && g.uniform() < 0.4f) ? succ[static_cast<size_t>(prev)][static_cast<size_t>(g.randint(6))]
                                                   : zipf.draw(g);
        std::string word = g.uniform() < 0.01f ? number(g) : vocab[static_cast<size_t>(id)];
        if (w == 0) word = capitalise(word);
        if (w > 0 && g.uniform() < 0.03f) word += "'s";
        out += word;
        prev = id;
        if (w + 1 < len) out += g.uniform() < 0.07f ? ", " : " ";
      }
      const float e = g.uniform();
      out += e < 0.85f ? "." : e < 0.95f ? "?" : "!";
      out += s + 1 < sentences ? " " : "\n";
    }
  }
  out.resize(static_cast<size_t>(bytes));
  return std::vector<uint8_t>(out.begin(), out.end());
}

std::vector<uint8_t> specific_corpus(Generator& g, const std::vector<std::string>& vocab, int64_t bytes) {
  const int64_t n = static_cast<int64_t>(vocab.size());
  const Zipf zipf(n, 1.25);
  const auto succ = make_successors(g, n, 3, n);
  std::string out;
  out.reserve(static_cast<size_t>(bytes + 256));
  int64_t prev = 0;
  while (static_cast<int64_t>(out.size()) < bytes) {
    out += capitalise(vocab[static_cast<size_t>(zipf.draw(g))]) + ": ";
    const int64_t clauses = 1 + g.randint(2);
    for (int64_t c = 0; c < clauses; ++c) {
      const int64_t len = 2 + g.randint(7);
      for (int64_t w = 0; w < len; ++w) {
        if (g.uniform() < 0.12f) {
          out += number(g);
        } else {
          const int64_t id = (w > 0 && g.uniform() < 0.6f)
                                 ? succ[static_cast<size_t>(prev)][static_cast<size_t>(g.randint(3))]
                                 : zipf.draw(g);
          out += vocab[static_cast<size_t>(id)];
          prev = id;
        }
        if (w + 1 < len) out += g.uniform() < 0.05f ? " - " : " ";
      }
      out += c + 1 < clauses ? "; " : (g.uniform() < 0.8f ? ".\n" : "!\n");
    }
  }
  out.resize(static_cast<size_t>(bytes));
  return std::vector<uint8_t>(out.begin(), out.end());
}

}  // namespace

TextCorpora make_synthetic_text(const SyntheticTextOptions& options) {
  if (options.generic_bytes_ <= 0 || options.specific_bytes_ <= 0) {
    throw std::invalid_argument("make_synthetic_text: corpus sizes must be positive, got generic " +
                                std::to_string(options.generic_bytes_) + " and specific " +
                                std::to_string(options.specific_bytes_));
  }
  Generator vg(mix_seed(options.seed_, 0x564F434142ull));  // "VOCAB"
  const std::vector<std::string> generic_vocab = make_vocab(vg, 3000, "bcdfghlmnprstvw", "aeiou", 1, 3);
  std::vector<std::string> specific_vocab = make_vocab(vg, 200, "kqxzjgdtbr", "aiouy", 2, 4);
  Generator pick(mix_seed(options.seed_, 0x5348415245ull));  // "SHARE"
  for (int k = 0; k < 200; ++k) specific_vocab.push_back(generic_vocab[static_cast<size_t>(pick.randint(600))]);
  // Shuffle so the shared words do not all sit at the tail of the Zipf ranking.
  for (int64_t i = static_cast<int64_t>(specific_vocab.size()) - 1; i > 0; --i) {
    std::swap(specific_vocab[static_cast<size_t>(i)], specific_vocab[static_cast<size_t>(pick.randint(i + 1))]);
  }
  Generator gg(mix_seed(options.seed_, 0x47454E45524943ull));    // "GENERIC"
  Generator sg(mix_seed(options.seed_, 0x5350454349464943ull));  // "SPECIFIC"
  return {ByteCorpus("synthetic-text generic (seed " + std::to_string(options.seed_) + ")",
                     generic_corpus(gg, generic_vocab, options.generic_bytes_)),
          ByteCorpus("synthetic-text specific (seed " + std::to_string(options.seed_) + ")",
                     specific_corpus(sg, specific_vocab, options.specific_bytes_))};
}

}  // namespace data
}  // namespace scalpel
