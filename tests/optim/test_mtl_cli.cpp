// End-to-end test of scalpel-aggregate: TorchJD's golden matrix in CSV and JSON (file and stdin),
// JSON output with direction and weights, and usage errors that exit 2 naming the flag.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#ifndef SCALPEL_AGGREGATE_BIN
#error "SCALPEL_AGGREGATE_BIN must name the scalpel-aggregate binary (tests/optim/CMakeLists.txt)"
#endif

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  static int calls = 0;
  const std::string log =
      ::testing::TempDir() + "/aggregate_" + std::to_string(::getpid()) + "_" + std::to_string(calls++) + ".txt";
  const std::string cmd = std::string(SCALPEL_AGGREGATE_BIN) + " " + args + " >" + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream f(log);
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>())};
  return r;
}

std::string write(const std::string& name, const std::string& text) {
  const std::string p = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(p) << text;
  return p;
}

TEST(MtlCli, MgdaFromCsvFile) {
  const auto p = write("J.csv", "# J\n-4,1,1\n6,1,1\n");
  const Result r = run("--method mgda --input " + p);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["method"], "mgda");
  ASSERT_EQ(j["direction"].size(), 3u);
  EXPECT_NEAR(j["direction"][0].get<double>(), 0.0, 1e-4);
  EXPECT_NEAR(j["direction"][1].get<double>(), 1.0, 1e-4);
  EXPECT_NEAR(j["weights"][0].get<double>(), 0.6, 1e-4);
  EXPECT_NEAR(j["weights"][1].get<double>(), 0.4, 1e-4);
}

TEST(MtlCli, CAGradFromJsonStdinWithSet) {
  const auto p = write("J.json", "{\"matrix\": [[-4,1,1],[6,1,1]]}");
  const Result r = run("--method cagrad --set c=0.5 < " + p);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["direction"][0].get<double>(), 0.1835, 1e-4);
  EXPECT_NEAR(j["direction"][1].get<double>(), 1.2041, 1e-4);
}

TEST(MtlCli, UsageErrorsExit2NamingTheFlag) {
  const auto p = write("J2.csv", "-4 1 1\n6 1 1\n");
  Result r = run("--method nosuch --input " + p);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--method"), std::string::npos) << r.out;
  r = run("--method cagrad --set c=-1 --input " + p);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--method"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'c'"), std::string::npos) << r.out;
  r = run("--method cagrad --set c --input " + p);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--set"), std::string::npos) << r.out;
  r = run("--method mgda --input /nonexistent/J.csv");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--input"), std::string::npos) << r.out;
  r = run("--input " + p);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--method"), std::string::npos) << r.out;
  const auto bad = write("bad.csv", "1,2\n3\n");
  r = run("--method mgda --input " + bad);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("row 1"), std::string::npos) << r.out;
  // RotoGrad needs the model: the tool says where it lives instead of "unknown method".
  r = run("--method rotograd --input " + p);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("scalpel-multitask --methods rotograd"), std::string::npos) << r.out;
}

}  // namespace
