#include "data/synthetic_parallel.h"

#include <set>
#include <stdexcept>

namespace scalpel {
namespace data {

namespace {

std::string syllables(Generator& g, const char* consonants, const char* vowels, int n) {
  const std::string c(consonants), v(vowels);
  std::string w;
  for (int i = 0; i < n; ++i) {
    w += c[static_cast<size_t>(g.randint(static_cast<int64_t>(c.size())))];
    w += v[static_cast<size_t>(g.randint(static_cast<int64_t>(v.size())))];
  }
  return w;
}

}  // namespace

SyntheticLanguagePair::SyntheticLanguagePair(const SyntheticParallelOptions& o) {
  if (o.nouns < 3 || o.verbs < 3 || o.adjectives < 1) {
    throw std::invalid_argument("SyntheticLanguagePair: needs at least 3 nouns, 3 verbs and 1 adjective");
  }
  Generator g(o.seed ^ 0x7061697273ULL);
  // Source words: ending in a vowel, so "+s" never makes another stem; all forms kept distinct.
  std::set<std::string> used = {"the", "a", "de", "di", "en"};
  auto fresh = [&](const char* cons, const char* vow, std::vector<std::string> forms_suffixes) {
    for (;;) {
      const std::string w = syllables(g, cons, vow, 2 + static_cast<int>(g.randint(2)));
      bool ok = true;
      for (const std::string& suf : forms_suffixes) ok = ok && !used.count(w + suf);
      if (!ok) continue;
      for (const std::string& suf : forms_suffixes) used.insert(w + suf);
      return w;
    }
  };
  auto add = [&](std::vector<std::string>& list, int64_t n, char cls, std::vector<std::string> tsuf) {
    for (int64_t i = 0; i < n; ++i) {
      const std::string src = fresh("bdfgklmnprt", "aeiou", {"", "s"});
      const std::string tgt = fresh("bcdghjkmnrsvwz", "aeiouy", tsuf);
      list.push_back(src);
      lexicon_[src] = {cls, tgt};
      for (const std::string& suf : tsuf) target_words_.push_back(tgt + suf);
    }
  };
  add(nouns_, o.nouns, 'n', {"", "en"});
  add(verbs_, o.verbs, 'v', {"t", "n"});
  add(adjectives_, o.adjectives, 'a', {"", "e"});
  for (const char* d : {"de", "di", "en"}) target_words_.push_back(d);
  in_domain_nouns_ = std::max<int64_t>(1, o.nouns / 3);
  in_domain_verbs_ = std::max<int64_t>(1, o.verbs / 3);
}

std::string SyntheticLanguagePair::sample_source(Generator& g, bool in_domain) const {
  auto pick = [&](const std::vector<std::string>& v, int64_t domain) {
    return v[static_cast<size_t>(g.randint(in_domain ? domain : static_cast<int64_t>(v.size())))];
  };
  std::vector<std::string> out;
  bool subject_plural = false;
  for (int part = 0; part < 2; ++part) {
    const bool plural = g.uniform() < 0.4f;
    if (part == 0) subject_plural = plural;
    out.push_back(!plural && g.uniform() < 0.4f ? "a" : "the");
    if (g.uniform() < 0.5f) out.push_back(pick(adjectives_, static_cast<int64_t>(adjectives_.size())));
    out.push_back(pick(nouns_, in_domain_nouns_) + (plural ? "s" : ""));
    if (part == 0) out.push_back(pick(verbs_, in_domain_verbs_) + (subject_plural ? "" : "s"));
  }
  return join_words(out);
}

std::string SyntheticLanguagePair::translate(const std::string& source) const {
  const std::vector<std::string> w = split_words(source);
  size_t i = 0;
  auto fail = [&](const std::string& what) -> std::invalid_argument {
    return std::invalid_argument("SyntheticLanguagePair::translate: " + what + " at word " + std::to_string(i + 1) +
                                 " of '" + source + "'");
  };
  // Parses det [adj] noun[s]; returns the target words and whether the noun is plural.
  auto phrase = [&](bool& plural) {
    if (i >= w.size() || (w[i] != "the" && w[i] != "a")) throw fail("expected 'the' or 'a'");
    const bool indefinite = w[i++] == "a";
    std::string adj;
    if (i < w.size() && lexicon_.count(w[i]) && lexicon_.at(w[i]).cls == 'a') adj = lexicon_.at(w[i++]).target;
    if (i >= w.size()) throw fail("expected a noun");
    std::string stem = w[i];
    plural = false;
    if (!(lexicon_.count(stem) && lexicon_.at(stem).cls == 'n')) {
      stem = stem.substr(0, stem.size() - 1);
      plural = !w[i].empty() && w[i].back() == 's' && lexicon_.count(stem) && lexicon_.at(stem).cls == 'n';
      if (!plural) throw fail("expected a noun, found '" + w[i] + "'");
    }
    if (indefinite && plural) throw fail("'a' before a plural noun");
    ++i;
    std::vector<std::string> t = {indefinite ? "en" : (plural ? "di" : "de"),
                                  lexicon_.at(stem).target + (plural ? "en" : "")};
    if (!adj.empty()) t.push_back(adj + (plural ? "e" : ""));
    return t;
  };
  bool subj_plural = false, obj_plural = false;
  std::vector<std::string> out = phrase(subj_plural);
  if (i >= w.size()) throw fail("expected a verb");
  std::string verb = w[i];
  if (!subj_plural) {
    if (verb.empty() || verb.back() != 's') throw fail("expected a verb agreeing with a singular subject");
    verb.pop_back();
  }
  if (!(lexicon_.count(verb) && lexicon_.at(verb).cls == 'v')) throw fail("expected a verb, found '" + w[i] + "'");
  ++i;
  const std::vector<std::string> obj = phrase(obj_plural);
  if (i != w.size()) throw fail("unexpected trailing words");
  out.insert(out.end(), obj.begin(), obj.end());
  out.push_back(lexicon_.at(verb).target + (subj_plural ? "n" : "t"));
  return join_words(out);
}

SyntheticParallel make_synthetic_parallel(const SyntheticParallelOptions& o) {
  if (o.generic_size < 0 || o.clean_size < 0 || o.eval_size < 0 || !(o.noise >= 0 && o.noise <= 1)) {
    throw std::invalid_argument("make_synthetic_parallel: sizes must be >= 0 and noise in [0, 1]");
  }
  const SyntheticLanguagePair lang(o);
  SyntheticParallel c;
  Generator g(o.seed);
  auto make = [&](int64_t n, bool in_domain, std::vector<SentencePair>& out) {
    for (int64_t k = 0; k < n; ++k) {
      const std::string s = lang.sample_source(g, in_domain);
      out.push_back({s, lang.translate(s)});
    }
  };
  make(o.generic_size, false, c.generic);
  make(o.clean_size, true, c.clean);
  make(o.eval_size, true, c.eval);
  const auto& vocab = lang.target_words();
  for (size_t k = 0; k < c.generic.size(); ++k) {
    if (g.uniform_double() >= o.noise) continue;
    std::vector<std::string> t = split_words(c.generic[k].target);
    switch (g.randint(4)) {
      case 0:  // drop a word
        t.erase(t.begin() + g.randint(static_cast<int64_t>(t.size())));
        break;
      case 1: {  // swap two words
        const auto a = static_cast<size_t>(g.randint(static_cast<int64_t>(t.size())));
        const auto b = static_cast<size_t>(g.randint(static_cast<int64_t>(t.size())));
        std::swap(t[a], t[b == a ? (a + 1) % t.size() : b]);
        break;
      }
      case 2:  // replace a word
        t[static_cast<size_t>(g.randint(static_cast<int64_t>(t.size())))] =
            vocab[static_cast<size_t>(g.randint(static_cast<int64_t>(vocab.size())))];
        break;
      default: {  // another sentence's target
        const auto n = static_cast<int64_t>(c.generic.size());
        if (n > 1)
          t = split_words(c.generic[static_cast<size_t>((static_cast<int64_t>(k) + 1 + g.randint(n - 1)) % n)].target);
        break;
      }
    }
    c.generic[k].target = join_words(t);
    ++c.corrupted;
  }
  return c;
}

}  // namespace data
}  // namespace scalpel
