// The synthetic parallel corpus (data/synthetic_parallel.h): clean pairs are exact translations,
// word order and agreement follow the grammar, the generic corpus carries the requested noise, the
// clean and eval sets stay in domain, and everything is a function of the seed.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "data/synthetic_parallel.h"

using namespace scalpel;

namespace {
data::SyntheticParallelOptions small(uint64_t seed, double noise) {
  data::SyntheticParallelOptions o;
  o.seed = seed;
  o.generic_size = 5000;
  o.clean_size = 500;
  o.eval_size = 200;
  o.noise = noise;
  return o;
}
}  // namespace

TEST(SyntheticParallel, CleanPairsAreExactTranslationsWithTheTargetGrammar) {
  const auto o = small(3, 0.3);
  const data::SyntheticLanguagePair lang(o);
  const data::SyntheticParallel c = data::make_synthetic_parallel(o);
  ASSERT_EQ(c.clean.size(), 500u);
  ASSERT_EQ(c.eval.size(), 200u);
  int plural_subjects = 0;
  for (const auto* set : {&c.clean, &c.eval}) {
    for (const data::SentencePair& p : *set) {
      ASSERT_EQ(p.target, lang.translate(p.source)) << p.source;
      const auto s = data::split_words(p.source), t = data::split_words(p.target);
      ASSERT_EQ(s.size(), t.size()) << p.source << " -> " << p.target;  // same words, other order
      // SOV: the verb comes last; it agrees with the subject ("n" plural, "t" singular), and the
      // target's first determiner says the subject's number.
      const bool plural = t[0] == "di";
      plural_subjects += plural;
      EXPECT_EQ(t.back().back(), plural ? 'n' : 't') << p.target;
      EXPECT_TRUE(t[0] == "de" || t[0] == "di" || t[0] == "en") << p.target;
      // In the source the verb follows the subject noun and carries "s" after a singular subject.
      EXPECT_TRUE(s[0] == "the" || s[0] == "a") << p.source;
    }
  }
  EXPECT_GT(plural_subjects, 100);  // both numbers occur (40% plural)
  EXPECT_LT(plural_subjects, 500);
}

TEST(SyntheticParallel, GenericCorpusCarriesTheRequestedNoise) {
  for (double noise : {0.0, 0.3}) {
    const auto o = small(5, noise);
    const data::SyntheticLanguagePair lang(o);
    const data::SyntheticParallel c = data::make_synthetic_parallel(o);
    ASSERT_EQ(c.generic.size(), 5000u);
    int wrong = 0;
    for (const data::SentencePair& p : c.generic) wrong += p.target != lang.translate(p.source);
    EXPECT_LE(wrong, c.corrupted);
    // Binomial(5000, 0.3): sd 32; a few corruptions change nothing (swapping two equal words).
    EXPECT_NEAR(static_cast<double>(wrong) / 5000, noise, noise > 0 ? 0.04 : 0.0) << "noise " << noise;
  }
}

TEST(SyntheticParallel, CleanAndEvalStayInDomainAndTheSeedDecides) {
  const auto o = small(7, 0.3);
  const data::SyntheticParallel a = data::make_synthetic_parallel(o), b = data::make_synthetic_parallel(o);
  EXPECT_EQ(a.generic.front().target, b.generic.front().target);
  EXPECT_EQ(a.eval.back().source, b.eval.back().source);
  EXPECT_NE(data::make_synthetic_parallel(small(8, 0.3)).clean.front().source, a.clean.front().source);
  // The last source word is the object noun: in domain it comes from a third of the nouns.
  std::set<std::string> generic_objects, clean_objects;
  for (const auto& p : a.generic) generic_objects.insert(data::split_words(p.source).back());
  for (const auto* set : {&a.clean, &a.eval})
    for (const auto& p : *set) clean_objects.insert(data::split_words(p.source).back());
  EXPECT_LE(clean_objects.size(), 2u * 20u);  // 20 in-domain nouns of 60, singular and plural forms
  EXPECT_GT(generic_objects.size(), 80u);     // most of the 120 forms
  for (const std::string& w : clean_objects) EXPECT_TRUE(generic_objects.count(w)) << w;
}

TEST(SyntheticParallel, TranslateNamesWhatItCannotParse) {
  const data::SyntheticLanguagePair lang(small(1, 0));
  try {
    lang.translate("the zzzq");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected a noun, found 'zzzq' at word 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lang.translate("dog"), std::invalid_argument);
  auto bad = small(1, 0);
  bad.noise = 1.5;
  EXPECT_THROW(data::make_synthetic_parallel(bad), std::invalid_argument);
}
