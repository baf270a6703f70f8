// bigWig reading/writing through libBigWig; stranded Track windows with reverse-complement flips.
// Track::window with revcomp: out[s][i] = raw[S-1-s][L-1-i].
// Test: build-data/tests/lowpass_tests -ts=genome
#include "models/data/bigwig.h"

extern "C" {
#include <bigWig.h>
}
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.h"

namespace lowpass {

namespace {
std::once_flag bw_init_once;
void bw_init() {
  // libBigWig keeps its buffer size in a library global; set it once per process.
  std::call_once(bw_init_once, [] { bwInit(1 << 17); });
}
bigWigFile_t* as_bw(void* p) { return static_cast<bigWigFile_t*>(p); }
}  // namespace

BigWig::BigWig(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LP_CHECK(!path.empty(), "bigWig: no file given");
  LP_CHECK(fs::exists(path, ec), "bigWig '", path, "': file not found");
  LP_CHECK(!fs::is_directory(path, ec), "bigWig '", path, "': is a directory, expected a file");
  LP_CHECK(access(path.c_str(), R_OK) == 0, "bigWig '", path, "': cannot read (", std::strerror(errno), ")");
  {
    std::ifstream f(path, std::ios::binary);
    uint32_t magic = 0;
    f.read(reinterpret_cast<char*>(&magic), 4);
    LP_CHECK(f.gcount() == 4, "bigWig '", path, "': file is shorter than a bigWig header");
    LP_CHECK(magic != 0x8789F2EBu, "bigWig '", path, "': this is a bigBed file, expected a bigWig signal track");
    LP_CHECK(magic == 0x888FFC26u, "bigWig '", path,
             "': not a bigWig file (bad magic number; bedGraph or wig must be converted with bedGraphToBigWig)");
  }
  bw_init();
  fp_ = bwOpen(path.c_str(), nullptr, "r");
  LP_CHECK(fp_ != nullptr, "bigWig '", path, "': libBigWig could not open it (corrupt or truncated file?)");
  bigWigFile_t* fp = as_bw(fp_);
  LP_CHECK(fp->cl != nullptr, "bigWig '", path, "': no chromosome list");
  for (int64_t i = 0; i < fp->cl->nKeys; ++i) sizes_.add(fp->cl->chrom[i], fp->cl->len[i]);
}

BigWig::~BigWig() {
  if (fp_) bwClose(as_bw(fp_));
}

void BigWig::check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict) {
  missing_.clear();
  for (const auto& c : needed) {
    int64_t L = sizes_.length(c);
    if (L < 0) {
      missing_.push_back(c);
      continue;
    }
    int64_t G = genome.length(c);
    LP_CHECK(G < 0 || G == L, "bigWig '", path_, "': chromosome '", c, "' has length ", L, " but ", G,
             " in the FASTA (different genome assembly?)");
  }
  if (missing_.empty()) return;
  LP_CHECK(missing_.size() < needed.size(), "bigWig '", path_, "': none of the needed chromosomes is in the file (",
           missing_[0], ": ", sizes_.suggest(missing_[0]), ")");
  LP_CHECK(!strict, "bigWig '", path_, "': chromosome '", missing_[0], "' is not in the file; ",
           sizes_.suggest(missing_[0]));
}

void BigWig::values(const std::string& chrom, int64_t start, int64_t end, float* out) const {
  int64_t L = sizes_.length(chrom);
  int64_t n = end - start;
  LP_CHECK(n >= 0, "bigWig '", path_, "': window ", chrom, ":", start, "-", end, " has end < start");
  if (L < 0) {
    bool known_missing = false;
    for (auto& m : missing_) known_missing |= m == chrom;
    LP_CHECK(known_missing, "bigWig '", path_, "': chromosome '", chrom, "' is not in the file; ",
             sizes_.suggest(chrom));
    std::fill(out, out + n, 0.0f);
    return;
  }
  LP_CHECK(start >= 0 && end <= L, "bigWig '", path_, "': window ", chrom, ":", start, "-", end,
           " is outside the chromosome (length ", L, ")");
  std::fill(out, out + n, 0.0f);
  if (n == 0) return;
  bwOverlappingIntervals_t* o = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    o = bwGetOverlappingIntervals(as_bw(fp_), chrom.c_str(), static_cast<uint32_t>(start), static_cast<uint32_t>(end));
  }
  LP_CHECK(o != nullptr, "bigWig '", path_, "': read of ", chrom, ":", start, "-", end, " failed (corrupt file?)");
  for (uint32_t k = 0; k < o->l; ++k) {
    int64_t a = std::max<int64_t>(o->start[k], start), b = std::min<int64_t>(o->end[k], end);
    float v = o->value[k];
    if (std::isnan(v)) v = 0.0f;
    for (int64_t i = a; i < b; ++i) out[i - start] = v;
  }
  bwDestroyOverlappingIntervals(o);
}

// ---------------------------------------------------------------------------------------------
Track::Track(const std::vector<std::string>& files) {
  LP_CHECK(!files.empty(), "signal track: no bigWig files given");
  for (const auto& f : files) files_.push_back(std::make_shared<BigWig>(f));
}

void Track::window(const std::string& chrom, int64_t start, int64_t end, float* out, bool revcomp) const {
  int64_t S = strands(), L = end - start;
  for (int64_t s = 0; s < S; ++s) {
    int64_t row = revcomp ? S - 1 - s : s;
    files_[s]->values(chrom, start, end, out + row * L);
    if (revcomp) std::reverse(out + row * L, out + (row + 1) * L);
  }
}

void Track::check_against(const ChromSizes& genome, const std::vector<std::string>& needed, bool strict) {
  for (auto& f : files_) f->check_against(genome, needed, strict);
}

// ---------------------------------------------------------------------------------------------
void write_bigwig(const std::string& path, const ChromSizes& sizes, const std::vector<std::vector<float>>& values) {
  LP_CHECK(static_cast<int64_t>(values.size()) == sizes.size(), "write_bigwig '", path, "': ", values.size(),
           " value arrays for ", sizes.size(), " chromosomes");
  bw_init();
  bigWigFile_t* fp = bwOpen(path.c_str(), nullptr, "w");
  LP_CHECK(fp != nullptr, "bigWig '", path, "': cannot open for writing");
  bool ok = bwCreateHdr(fp, 10) == 0;
  std::vector<const char*> names;
  std::vector<uint32_t> lens;
  for (int64_t c = 0; c < sizes.size(); ++c) {
    LP_CHECK(static_cast<int64_t>(values[c].size()) == sizes.lengths[c], "write_bigwig '", path, "': chromosome ",
             sizes.names[c], " has ", values[c].size(), " values for length ", sizes.lengths[c]);
    names.push_back(sizes.names[c].c_str());
    lens.push_back(static_cast<uint32_t>(sizes.lengths[c]));
  }
  if (ok) {
    fp->cl = bwCreateChromList(names.data(), lens.data(), static_cast<int64_t>(names.size()));
    ok = fp->cl != nullptr && bwWriteHdr(fp) == 0;
  }
  for (int64_t c = 0; ok && c < sizes.size(); ++c) {
    std::vector<uint32_t> st, en;
    std::vector<float> va;
    const auto& v = values[c];
    for (int64_t i = 0; i < static_cast<int64_t>(v.size());) {
      int64_t j = i + 1;
      while (j < static_cast<int64_t>(v.size()) && v[j] == v[i]) ++j;
      if (v[i] != 0.0f) {
        st.push_back(static_cast<uint32_t>(i));
        en.push_back(static_cast<uint32_t>(j));
        va.push_back(v[i]);
      }
      i = j;
    }
    if (st.empty()) continue;
    std::vector<const char*> cn(st.size(), names[c]);
    ok = bwAddIntervals(fp, cn.data(), st.data(), en.data(), va.data(), static_cast<uint32_t>(st.size())) == 0;
  }
  bwClose(fp);
  LP_CHECK(ok, "bigWig '", path, "': write failed");
}

}  // namespace lowpass
