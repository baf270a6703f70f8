// libFuzzer target: FASTA files and faidx region requests (models/data/fasta.cpp). Input = first line
// "chrom start end" requests separated by ';', the rest a FASTA file; requests also go to a fixed valid
// genome. Fetched lengths must equal end - start. Only lowpass::Error may escape.
// A line "%fai" in the rest ends the FASTA: what follows is written as its .fai, newer than the FASTA, so an index
// found beside it (stale, foreign or corrupt) is checked (index_misfit) and used; "%faz" instead bgzips the FASTA
// (a block per record), builds its .gzi with htslib, and then writes the given .fai beside them.
// Run: scripts/fuzz.sh 10 fasta (corpus: tests/fuzz/corpus/fasta/)
#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/hts_log.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "models/data/fasta.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

namespace {
struct Request {
  std::string chrom;
  int64_t start = 0, end = 0;
};

std::vector<Request> parse_requests(const std::string& line) {
  std::vector<Request> out;
  std::stringstream ss(line);
  std::string item;
  while (std::getline(ss, item, ';') && out.size() < 8) {
    std::istringstream is(item);
    Request r;
    long long s = 0, e = 0;
    if (is >> r.chrom >> s >> e) {
      r.start = s;
      r.end = e;
      out.push_back(r);
    }
  }
  return out;
}

void fetch_all(const Fasta& fa, const std::vector<Request>& reqs) {
  for (const auto& r : reqs) {
    LP_FUZZ_EXPECT_ERROR({
      std::string s = fa.fetch(r.chrom, r.start, r.end, "fuzz request: ");
      if (static_cast<int64_t>(s.size()) != r.end - r.start) __builtin_trap();
    });
    if (r.end - r.start > 0 && r.end - r.start <= (1 << 16)) {
      std::vector<uint8_t> codes(r.end - r.start);
      LP_FUZZ_EXPECT_ERROR(fa.fetch_codes(r.chrom, r.start, r.end, codes.data(), "fuzz request: "));
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const std::string dir = fuzz::scratch_dir();
  static Fasta* genome = [] {
    std::string p = dir + "/genome.fa";
    std::ofstream(p) << ">chr1\nACGTACGTNNacgt\nACG\n>chr2 description\nTTTT\n>chrM\nA\n";
    return new Fasta(p, dir + "/cache");
  }();
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  std::string first = nl == std::string::npos ? text : text.substr(0, nl);
  std::string body = nl == std::string::npos ? std::string() : text.substr(nl + 1);
  auto reqs = parse_requests(first);
  fetch_all(*genome, reqs);

  // The rest as a FASTA file: records, diagnosis, then a faidx index built from scratch or the one given after it.
  const auto mark_at = [&body](const char* m) {  // the first line that is exactly m
    if (body.rfind(m, 0) == 0) return size_t{0};
    const size_t k = body.find(std::string("\n") + m);
    return k == std::string::npos ? k : k + 1;
  };
  const size_t fai_at = mark_at("%fai\n"), faz_at = mark_at("%faz\n"), at = std::min(fai_at, faz_at);
  const bool given_fai = at != std::string::npos, bgzip = given_fai && at == faz_at;
  const std::string fai_text = given_fai ? body.substr(at + 5) : std::string();
  if (given_fai) body.resize(at);
  const std::string path = dir + "/in.fa";
  std::error_code ec;
  fs::remove(path + ".fai", ec);
  fs::remove(path + ".gzi", ec);
  fs::remove_all(dir + "/cache-in", ec);
  if (!bgzip) {
    fuzz::write_input("in.fa", reinterpret_cast<const uint8_t*>(body.data()), body.size());
  } else {  // one BGZF block per record, so that reads seek across blocks through the .gzi
    BGZF* z = bgzf_open(path.c_str(), "w");
    if (!z) return 0;
    for (size_t i = 0; i < body.size();) {
      size_t j = body.find("\n>", i);
      j = j == std::string::npos ? body.size() : j + 1;
      if (bgzf_write(z, body.data() + i, j - i) < 0 || bgzf_flush(z) != 0) break;
      i = j;
    }
    bgzf_close(z);
    const enum htsLogLevel old = hts_get_log_level();
    hts_set_log_level(HTS_LOG_OFF);
    const int built = fai_build3(path.c_str(), (path + ".fai").c_str(), (path + ".gzi").c_str());
    hts_set_log_level(old);
    if (built != 0) fs::remove(path + ".fai", ec);
  }
  if (given_fai)
    fuzz::write_input("in.fa.fai", reinterpret_cast<const uint8_t*>(fai_text.data()), fai_text.size());
  LP_FUZZ_EXPECT_ERROR((void)read_fasta_records(path));
  (void)diagnose_fasta(path);
  LP_FUZZ_EXPECT_ERROR({
    Fasta fa(path, dir + "/cache-in");
    for (int64_t i = 0; i < fa.chrom_sizes().size(); ++i)
      if (fa.chrom_sizes().lengths[i] < 0) __builtin_trap();
    fetch_all(fa, reqs);
  });
  return 0;
}
