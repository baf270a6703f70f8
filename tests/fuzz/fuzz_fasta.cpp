// libFuzzer target: FASTA files and faidx region requests (models/data/fasta.cpp). Input = first line
// "chrom start end" requests separated by ';', the rest a FASTA file; requests also go to a fixed valid
// genome. Fetched lengths must equal end - start. Only lowpass::Error may escape.
// Run: scripts/fuzz.sh 10 fasta (corpus: tests/fuzz/corpus/fasta/)
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

  // The rest as a FASTA file: records, diagnosis, then a faidx index built from scratch.
  std::string path = fuzz::write_input("in.fa", reinterpret_cast<const uint8_t*>(body.data()), body.size());
  std::error_code ec;
  fs::remove(path + ".fai", ec);
  fs::remove_all(dir + "/cache-in", ec);
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
