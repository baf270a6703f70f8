// Extraction benchmark (issue 3): windows/s for summit-centred windows, one-hot (4, I) + bigWig profile (S, O).
// Window of centre c: sequence [c - I/2, c - I/2 + I), profile [c - O/2, c - O/2 + O); checksums let bench_windows.py compare with pyfaidx/pyBigWig.
// Run: bench/bench_windows.py (drives this and the Python side); alone: build-win/bench/bench_windows FASTA BW BED [--reps 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "models/data/bigwig.h"
#include "models/data/fasta.h"
#include "models/data/window_cache.h"

using namespace lowpass;

namespace {

struct Centre {
  std::string chrom;
  int64_t c = 0;
};

// BED3: the centre is column 2 (start); end = start + 1. Lines starting with '#' or 'track' are skipped.
std::vector<Centre> read_centres(const std::string& path) {
  std::ifstream in(path);
  LP_CHECK(in, path, ": cannot open the window BED");
  std::vector<Centre> out;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#' || line.rfind("track", 0) == 0) continue;
    std::istringstream ls(line);
    Centre w;
    int64_t end = 0;
    LP_CHECK(static_cast<bool>(ls >> w.chrom >> w.c >> end), path, ":", n, ": expected 'chrom start end'");
    out.push_back(w);
  }
  LP_CHECK(!out.empty(), path, ": no windows");
  return out;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sums that identify the extracted data: ones per base row, total signal, signal weighted by position.
struct Check {
  double base[4] = {0, 0, 0, 0};
  double signal = 0, weighted = 0;
  void add(const float* x, int64_t I, const float* y, int64_t S, int64_t O) {
    for (int b = 0; b < 4; ++b)
      for (int64_t i = 0; i < I; ++i) base[b] += x[b * I + i];
    for (int64_t s = 0; s < S; ++s)
      for (int64_t i = 0; i < O; ++i) {
        signal += y[s * O + i];
        weighted += double(y[s * O + i]) * double(i + 1) * double(s + 1);
      }
  }
  std::string json() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "{\"A\": %.0f, \"C\": %.0f, \"G\": %.0f, \"T\": %.0f, \"signal\": %.17g, \"weighted\": %.17g}",
                  base[0], base[1], base[2], base[3], signal, weighted);
    return buf;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Wall seconds of each of `reps` passes over windows 0..n-1 (no warm-up: the first pass is part of the median).
std::vector<double> timed(int reps, int64_t n, const std::function<void(int64_t)>& one) {
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    const double a = now();
    for (int64_t w = 0; w < n; ++w) one(w);
    ts.push_back(now() - a);
  }
  return ts;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 4) {
      std::fprintf(stderr, "usage: %s FASTA BIGWIG BED [--reps N] [--input 1346] [--output 1000] [--cache DIR]\n", argv[0]);
      return 2;
    }
    const std::string fasta_path = argv[1], bw_path = argv[2], bed_path = argv[3];
    int reps = 5;
    int64_t I = 1346, O = 1000;
    std::string cache_dir;
    for (int i = 4; i + 1 < argc; i += 2) {
      const std::string a = argv[i];
      if (a == "--reps") reps = std::atoi(argv[i + 1]);
      else if (a == "--input") I = std::atoll(argv[i + 1]);
      else if (a == "--output") O = std::atoll(argv[i + 1]);
      else if (a == "--cache") cache_dir = argv[i + 1];
      else LP_CHECK(false, "bench_windows: unknown option ", a);
    }
    LP_CHECK(reps >= 1, "bench_windows: --reps must be >= 1");
    const std::vector<Centre> centres = read_centres(bed_path);
    const int64_t n = static_cast<int64_t>(centres.size());

    double t0 = now();
    auto fasta = std::make_shared<Fasta>(fasta_path, cache_dir);
    const double open_fasta_s = now() - t0;
    std::vector<int64_t> cidx(n);
    for (int64_t w = 0; w < n; ++w) {
      cidx[w] = fasta->chrom_sizes().find(centres[w].chrom);
      LP_CHECK(cidx[w] >= 0, bed_path, ": chromosome '", centres[w].chrom, "' not in ", fasta_path);
    }
    std::vector<float> x(4 * I), y(2 * O);
    std::vector<uint8_t> codes(I);

    std::printf("{\"windows\": %lld, \"input\": %lld, \"output\": %lld, \"reps\": %d, \"open_fasta_s\": %.4f, \"fai\": \"%s\", \"modes\": [\n",
                (long long)n, (long long)I, (long long)O, reps, open_fasta_s, fasta->index_path().c_str());
    bool first = true;
    auto print_mode = [&](const char* mode, int S, double setup_s, const std::vector<double>& ts, int64_t nw, const Check& chk) {
      std::printf("%s  {\"mode\": \"%s\", \"strands\": %d, \"setup_s\": %.4f, \"median_s\": %.4f, \"windows_per_s\": %.1f, \"times\": [",
                  first ? "" : ",\n", mode, S, setup_s, median(ts), double(nw) / median(ts));
      for (size_t i = 0; i < ts.size(); ++i) std::printf("%s%.4f", i ? ", " : "", ts[i]);
      std::printf("], \"check\": %s}", chk.json().c_str());
      first = false;
    };
    for (int S : {1, 2}) {
      // S = 2: a stranded pair; the data has one unstranded track, so the same file is opened twice.
      const std::vector<std::string> files(S, bw_path);
      // (a) direct readers: htslib faidx + libBigWig per window (what pyfaidx + pyBigWig do).
      {
        t0 = now();
        Track track(files);
        const double open_s = now() - t0;
        auto one = [&](int64_t w) {
          const int64_t cs = centres[w].c - I / 2, ps = centres[w].c - O / 2;
          fasta->fetch_codes(centres[w].chrom, cs, cs + I, codes.data());
          one_hot_codes(codes.data(), I, x.data());
          track.window(centres[w].chrom, ps, ps + O, y.data());
        };
        const std::vector<double> ts = timed(reps, n, one);
        Check chk;  // an untimed pass
        for (int64_t w = 0; w < n; ++w) {
          one(w);
          chk.add(x.data(), I, y.data(), S, O);
        }
        print_mode("direct", S, open_s, ts, n, chk);
      }
      // (b) GenomeWindows, the dataset's path: preloaded (the yeast genome fits the default budget;
      // setup_s is the preload, paid once per dataset), then an LRU chunk cache under a 16 MB budget
      // (what a genome larger than the budget gets; the first repeat fills the cache).
      for (int64_t budget : {int64_t(1) << 30, int64_t(16) << 20}) {
        t0 = now();
        std::vector<Track> tracks{Track(files)};
        CacheOptions opt;
        opt.memory_budget = budget;
        GenomeWindows gw(fasta, tracks, fasta->chrom_sizes().names, opt);
        const double setup_s = now() - t0;
        auto one = [&](int64_t w) {
          const int64_t cs = centres[w].c - I / 2, ps = centres[w].c - O / 2;
          gw.codes(cidx[w], cs, cs + I, codes.data());
          one_hot_codes(codes.data(), I, x.data());
          gw.track(0, cidx[w], ps, ps + O, y.data());
        };
        const std::vector<double> ts = timed(reps, n, one);
        Check chk;
        for (int64_t w = 0; w < n; ++w) {
          one(w);
          chk.add(x.data(), I, y.data(), S, O);
        }
        print_mode(gw.preloaded() ? "preloaded" : "lru_cache_16MB", S, setup_s, ts, n, chk);
        LP_CHECK(gw.preloaded() == (budget == (int64_t(1) << 30)), "bench_windows: unexpected cache mode");
      }
    }
    std::printf("\n]}\n");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_windows: %s\n", e.what());
    return 1;
  }
}
