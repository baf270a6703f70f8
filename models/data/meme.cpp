// MEME minimal-format motif reader and the bundled SPI1 matrix (JASPAR 2022 MA0080.6).
// Rows "p_A p_C p_G p_T" after "letter-probability matrix: alength= 4 w= W"; renormalised to sum 1.
// Test: build/tests/lowpass_tests -ts=simulate
#include "models/data/meme.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace lowpass {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Value after "key=" in a MEME header line (tolerates "key= 4" and "key=4"); -1 if absent.
int64_t header_int(const std::string& line, const std::string& key, const std::string& where) {
  size_t p = line.find(key + "=");
  if (p == std::string::npos) return -1;
  std::istringstream is(line.substr(p + key.size() + 1));
  int64_t v = -1;
  is >> v;
  LP_CHECK(!is.fail(), where, ": cannot read the value of '", key, "='");
  return v;
}

// JASPAR 2022 CORE MA0080.6 Spi1, numbers copied from models/data/motifs/SPI1.meme (see README there).
const char* kSpi1Meme = R"(MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF MA0080.6 Spi1
letter-probability matrix: alength= 4 w= 17 nsites= 105198 E= 0
0.394485 0.147037 0.262961 0.195517
0.356670 0.141647 0.348191 0.153492
0.632436 0.065239 0.216801 0.085524
0.782144 0.054735 0.100895 0.062226
0.774359 0.022149 0.097150 0.106342
0.082093 0.115981 0.760338 0.041588
0.855073 0.024658 0.091599 0.028670
0.038755 0.005228 0.944505 0.011512
0.019278 0.007899 0.963735 0.009088
0.969714 0.010409 0.010105 0.009772
0.946111 0.009107 0.017320 0.027462
0.072397 0.067178 0.847355 0.013071
0.161572 0.035324 0.048746 0.754358
0.094793 0.057748 0.792648 0.054811
0.220479 0.110050 0.548195 0.121276
0.373828 0.165716 0.264958 0.195498
0.355225 0.162199 0.249159 0.233417
)";

}  // namespace

std::vector<Motif> parse_meme(const std::string& text, const std::string& source) {
  std::vector<Motif> motifs;
  std::istringstream in(text);
  std::string line;
  int64_t lineno = 0;
  auto where = [&]() { return source + ":" + std::to_string(lineno); };
  bool saw_version = false;
  while (std::getline(in, line)) {
    ++lineno;
    std::string t = trim(line);
    if (t.rfind("MEME version", 0) == 0) saw_version = true;
    if (t.rfind("ALPHABET", 0) == 0) {
      size_t p = t.find('=');
      std::string alpha = p == std::string::npos ? "" : trim(t.substr(p + 1));
      LP_CHECK(alpha == "ACGT", where(), ": only the DNA alphabet ACGT is supported, found '", alpha, "'");
    }
    if (t.rfind("MOTIF", 0) == 0) {
      std::istringstream ls(t.substr(5));
      Motif m;
      ls >> m.id >> m.name;
      LP_CHECK(!m.id.empty(), where(), ": MOTIF line without an identifier");
      motifs.push_back(std::move(m));
      continue;
    }
    if (t.rfind("letter-probability matrix", 0) == 0) {
      LP_CHECK(!motifs.empty(), where(), ": letter-probability matrix before any MOTIF line");
      Motif& m = motifs.back();
      LP_CHECK(m.pwm.empty(), where(), ": second matrix for motif ", m.id);
      int64_t alength = header_int(t, "alength", where());
      int64_t w = header_int(t, "w", where());
      LP_CHECK(alength == -1 || alength == 4, where(), ": alength must be 4, found ", alength);
      // Rows follow until a blank line, another keyword or the declared width is reached.
      while ((w < 0 || m.width() < w) && std::getline(in, line)) {
        ++lineno;
        std::string r = trim(line);
        if (r.empty()) {
          if (w < 0 && m.width() > 0) break;
          continue;
        }
        if (!(std::isdigit(static_cast<unsigned char>(r[0])) || r[0] == '.')) {
          LP_CHECK(w < 0, where(), ": motif ", m.id, " declares w= ", w, " but has ", m.width(), " rows");
          break;
        }
        std::istringstream rs(r);
        std::array<double, 4> p{};
        for (auto& v : p) {
          rs >> v;
          LP_CHECK(!rs.fail(), where(), ": expected 4 probabilities in motif ", m.id, ", got '", r, "'");
          LP_CHECK(std::isfinite(v) && v >= 0, where(), ": negative or non-finite probability in motif ", m.id);
        }
        std::string extra;
        LP_CHECK(!(rs >> extra), where(), ": more than 4 columns in motif ", m.id);
        double s = p[0] + p[1] + p[2] + p[3];
        LP_CHECK(std::fabs(s - 1.0) < 0.02, where(), ": row of motif ", m.id, " sums to ", s, ", not 1");
        for (auto& v : p) v /= s;
        m.pwm.push_back(p);
      }
      LP_CHECK(w < 0 || m.width() == w, source, ": motif ", m.id, " declares w= ", w, " but has ",
               m.width(), " rows (file ends)");
      LP_CHECK(m.width() > 0, where(), ": motif ", m.id, " has an empty matrix");
    }
  }
  LP_CHECK(saw_version, source, ": not a MEME file (no 'MEME version' line)");
  motifs.erase(std::remove_if(motifs.begin(), motifs.end(), [](const Motif& m) { return m.pwm.empty(); }),
               motifs.end());
  LP_CHECK(!motifs.empty(), source, ": no motif with a letter-probability matrix");
  return motifs;
}

std::vector<Motif> read_meme(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LP_CHECK(f.good(), path, ": cannot open the MEME motif file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_meme(ss.str(), path);
}

const Motif& select_motif(const std::vector<Motif>& motifs, const std::string& which,
                          const std::string& source) {
  LP_CHECK(!motifs.empty(), source, ": no motifs");
  if (which.empty()) return motifs.front();
  for (const auto& m : motifs)
    if (lower(m.id) == lower(which) || lower(m.name) == lower(which)) return m;
  throw Error(source + ": no motif with id or name '" + which + "'");
}

Motif default_motif() { return parse_meme(kSpi1Meme, "<bundled SPI1.meme>").front(); }

Motif with_pseudocount(const Motif& m, double pc) {
  Motif r = m;
  for (auto& row : r.pwm)
    for (auto& v : row) v = (v + pc) / (1.0 + 4.0 * pc);
  return r;
}

}  // namespace lowpass
