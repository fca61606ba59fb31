// The built-in synthetic parallel corpus of the translation study (issue 16), so that it runs on a
// fresh machine: a seeded rule-based "language pair" with different word order and morphology,
// split as the paper's setting needs — a large noisy generic corpus (the main loss), a small clean
// in-domain corpus (the auxiliary loss) and a clean in-domain evaluation set.
//
// Source (English-like, SVO): [det] [adj] noun[s] verb[s] [det] [adj] noun[s]
//   plural nouns take "s"; the verb takes "s" after a singular subject; det is "the", or "a" before
//   a singular noun.
// Target (SOV, adjectives after the noun, agreement): det noun[en] [adj[e]] det noun[en] [adj[e]] verb(t|n)
//   det: "de" (the, singular), "di" (the, plural), "en" (a); plural nouns take "en", an adjective of
//   a plural noun takes "e", the verb ends in "t" after a singular subject and "n" after a plural one.
// Words are distinct random syllable strings per seed (none is another's inflected form). The
// generic corpus draws from the whole lexicon; the clean and evaluation sets from an in-domain third
// of the nouns and verbs. A generic pair is corrupted with probability `noise`: a target word
// dropped, two target words swapped, a target word replaced by a random one, or the target of
// another sentence. translate() gives the exact target of any source sentence the grammar makes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/parallel.h"

namespace scalpel {
namespace data {

struct SyntheticParallelOptions {
  uint64_t seed = 0;
  int64_t generic_size = 50000, clean_size = 2000, eval_size = 1000;
  double noise = 0.3;  // fraction of corrupted generic pairs
  int64_t nouns = 60, verbs = 30, adjectives = 20;
};

class SyntheticLanguagePair {
 public:
  explicit SyntheticLanguagePair(const SyntheticParallelOptions& options);
  // One grammatical source sentence; in_domain restricts nouns and verbs to the in-domain third.
  std::string sample_source(Generator& gen, bool in_domain) const;
  // The exact target of a source sentence of the grammar; throws std::invalid_argument naming the
  // word it cannot parse otherwise.
  std::string translate(const std::string& source) const;
  const std::vector<std::string>& target_words() const { return target_words_; }

 private:
  struct Entry {
    char cls;  // 'n', 'v', 'a'
    std::string target;
  };
  std::vector<std::string> nouns_, verbs_, adjectives_;  // source stems
  std::map<std::string, Entry> lexicon_;                 // source stem -> class, target stem
  std::vector<std::string> target_words_;                // every inflected target word, for noise
  int64_t in_domain_nouns_, in_domain_verbs_;
};

struct SyntheticParallel {
  std::vector<SentencePair> generic, clean, eval;
  int64_t corrupted = 0;  // generic pairs the noise was applied to (a swap of equal words changes nothing)
};

SyntheticParallel make_synthetic_parallel(const SyntheticParallelOptions& options = SyntheticParallelOptions());

}  // namespace data
}  // namespace scalpel
