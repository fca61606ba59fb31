#include "data/parallel.h"

#include <sstream>
#include <stdexcept>

#include "data/io.h"

namespace scalpel {
namespace data {

std::vector<std::string> split_words(const std::string& sentence) {
  std::istringstream in(sentence);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (i + static_cast<size_t>(len) > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + static_cast<size_t>(k)] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + static_cast<size_t>(k)] & 0x3F);
    }
    const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

}  // namespace

ParallelCorpus read_parallel_tsv(const std::string& path, const ParallelReadOptions& options) {
  ParallelCorpus c;
  c.path = path;
  const std::vector<uint8_t> bytes = read_maybe_gzip(path);  // throws naming the file
  const std::string text(bytes.begin(), bytes.end());
  auto bad = [&](int64_t line, const std::string& reason) {
    const std::string msg = path + ":" + std::to_string(line) + ": " + reason;
    if (options.strict) throw std::runtime_error("parallel corpus " + msg);
    ++c.bad_lines;
    if (c.problems.size() < ParallelCorpus::kMaxProblems) c.problems.push_back(msg);
  };
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string raw = text.substr(start, end - start);
    start = end + 1;
    const int64_t line = ++c.lines;
    const std::string l = trim(raw);
    if (l.empty()) continue;
    const size_t tab = l.find('\t');
    if (tab == std::string::npos) {
      bad(line, "no tab (expected source<TAB>target)");
      continue;
    }
    if (l.find('\t', tab + 1) != std::string::npos) {
      bad(line, "more than one tab (expected source<TAB>target)");
      continue;
    }
    if (!valid_utf8(l)) {
      bad(line, "invalid UTF-8");
      continue;
    }
    SentencePair p{trim(l.substr(0, tab)), trim(l.substr(tab + 1))};
    if (p.source.empty() || p.target.empty()) {
      bad(line, std::string("empty ") + (p.source.empty() ? "source" : "target") + " side");
      continue;
    }
    c.pairs.push_back(std::move(p));
  }
  if (c.pairs.empty()) {
    throw std::runtime_error("parallel corpus " + path + ": no usable sentence pair in " + std::to_string(c.lines) +
                             " lines (" + std::to_string(c.bad_lines) + " bad" +
                             (c.problems.empty() ? std::string() : "; first: " + c.problems.front()) + ")");
  }
  return c;
}

}  // namespace data
}  // namespace scalpel
