// Corpus BLEU (experiments/translation/bleu.h) on cases computed by hand and on sacreBLEU's
// documented example, and the scalpel-bleu command's output and usage errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <stdexcept>

#include "experiments/translation/bleu.h"
#include "run_util.h"

using namespace scalpel::experiments;

namespace {
BleuScore bleu(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& r,
               BleuSmooth smooth = BleuSmooth::Exp) {
  BleuOptions o;
  o.smooth = smooth;
  return corpus_bleu(h, r, o);
}
}  // namespace

TEST(Bleu, SacreBleuReadmeExampleWith13aTokenization) {
  // sacreBLEU's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
  const std::vector<std::string> sys = {"The dog bit the man.", "It wasn't surprising.",
                                        "The man had just bitten him."};
  const std::vector<std::vector<std::string>> refs = {
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  BleuOptions o;
  o.tokenize = BleuTokenize::Mteval13a;
  const BleuScore s = corpus_bleu(sys, refs, o);
  EXPECT_EQ(s.format(), "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  EXPECT_EQ(bleu_tokens("It wasn't 3.5 km-long, (really)!", BleuTokenize::Mteval13a),
            (std::vector<std::string>{"It", "wasn't", "3.5", "km-long", ",", "(", "really", ")", "!"}));
}

TEST(Bleu, HandComputedPrecisionsAndSmoothing) {
  EXPECT_DOUBLE_EQ(bleu({"a b c d"}, {{"a b c d"}}).score, 100.0);
  // p = 3/4, 2/3, 1/2, 0/1.
  const BleuScore e = bleu({"a b c e"}, {{"a b c d"}});
  EXPECT_EQ(e.matches, (std::array<long long, 4>{3, 2, 1, 0}));
  EXPECT_EQ(e.totals, (std::array<long long, 4>{4, 3, 2, 1}));
  EXPECT_NEAR(e.score, 100 * std::pow(0.75 * (2.0 / 3) * 0.5 * 0.5, 0.25), 1e-9);  // exp: p4 = 1/(2·1)
  EXPECT_DOUBLE_EQ(bleu({"a b c e"}, {{"a b c d"}}, BleuSmooth::None).score, 0.0);
  EXPECT_NEAR(bleu({"a b c e"}, {{"a b c d"}}, BleuSmooth::Floor).score,
              100 * std::pow(0.75 * (2.0 / 3) * 0.5 * 0.1, 0.25), 1e-9);
  EXPECT_NEAR(bleu({"a b c e"}, {{"a b c d"}}, BleuSmooth::AddK).score,
              100 * std::pow(0.75 * (3.0 / 4) * (2.0 / 3) * (1.0 / 2), 0.25), 1e-9);
  // Clipping: "the" four times against a reference that has it once.
  const BleuScore c = bleu({"the the the the"}, {{"the cat"}});
  EXPECT_EQ(c.matches[0], 1);
  EXPECT_NEAR(c.precisions[0], 25.0, 1e-12);
  // Corpus level: counts are summed over sentences before dividing.
  const BleuScore two = bleu({"a b c d", "x y"}, {{"a b c d", "x z"}});
  EXPECT_EQ(two.matches[0], 5);
  EXPECT_EQ(two.totals[0], 6);
  EXPECT_EQ(two.totals[3], 1);
}

TEST(Bleu, BrevityPenaltyAndClosestReferenceLength) {
  const BleuScore s = bleu({"a b c d"}, {{"a b c d e f"}});
  EXPECT_NEAR(s.bp, std::exp(1.0 - 6.0 / 4.0), 1e-12);
  EXPECT_NEAR(s.score, 100 * std::exp(1.0 - 6.0 / 4.0), 1e-9);
  // Closest reference length, the shorter on a tie (3 and 5 around 4): c > r, no penalty.
  const BleuScore t = bleu({"a b c d"}, {{"a b c"}, {"a b c d e"}});
  EXPECT_EQ(t.ref_len, 3);
  EXPECT_DOUBLE_EQ(t.bp, 1.0);
  // Too short for 4-grams: p4 has no n-grams at all, BLEU 0 (sacreBLEU without effective order).
  EXPECT_DOUBLE_EQ(bleu({"a b"}, {{"a b"}}).score, 0.0);
  EXPECT_DOUBLE_EQ(bleu({""}, {{"a b"}}).bp, 0.0);
}

TEST(Bleu, BadInputsAreNamed) {
  EXPECT_THROW(corpus_bleu({"a"}, {}), std::invalid_argument);
  try {
    corpus_bleu({"a", "b"}, {{"a"}});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("has 1 lines, the hypotheses 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bleu_tokenize_from_string("intl"), std::invalid_argument);
  EXPECT_THROW(bleu_smooth_from_string("add-one"), std::invalid_argument);
}

TEST(Bleu, CommandLinePrintsTheSummaryAndRefusesMisalignedFiles) {
  const std::string dir = scalpel_test::fresh_dir("bleu_cli");
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string h = write("hyp.txt", "a b c e\nx y z w\n"), r = write("ref.txt", "a b c d\nx y z w\n"),
                    short_ref = write("short.txt", "a b c d\n");
  const std::string bin = SCALPEL_BLEU_BIN;
  const scalpel_test::Result ok = scalpel_test::run(bin + " " + h + " " + r);
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(scalpel_test::has_text(ok, "BLEU = "));
  EXPECT_TRUE(scalpel_test::has_text(ok, "hyp_len = 8 ref_len = 8"));
  const scalpel_test::Result bad = scalpel_test::run(bin + " " + h + " " + short_ref);
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(scalpel_test::has_text(bad, "has 1 lines but HYPOTHESES file"));
  const scalpel_test::Result tok = scalpel_test::run(bin + " " + h + " " + r + " --tokenize intl");
  EXPECT_EQ(tok.code, 2);
  EXPECT_TRUE(scalpel_test::has_text(tok, "--tokenize: 'intl'"));
  const scalpel_test::Result missing = scalpel_test::run(bin + " " + dir + "/nope.txt " + r);
  EXPECT_EQ(missing.code, 2);
  EXPECT_TRUE(scalpel_test::has_text(missing, "nope.txt' cannot be read"));
}
