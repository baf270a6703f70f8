// Writing a dense bigWig (every base its own value: a predicted profile or attribution track over a chromosome)
// through BigWigWriter: wall seconds (median of --repeats) and the peak RSS growth of the process, for --bases bases
// on one chromosome. The zoom levels dominate both (docs/formats.md, "bigWig outputs"); compare two builds (e.g.
// the commit before the streamed zoom levels) by running each build's binary on the same machine.
// Usage: build/bench/bench_bigwig [--bases 40000000] [--repeats 3] [--out DIR]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "models/data/bigwig.h"

using namespace lowpass;

int main(int argc, char** argv) {
  int64_t bases = 40'000'000;
  int repeats = 3;
  std::string out = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--bases") bases = std::atoll(argv[i + 1]);
    else if (k == "--repeats") repeats = std::atoi(argv[i + 1]);
    else if (k == "--out") out = argv[i + 1];
    else return std::fprintf(stderr, "unknown option %s\n", k.c_str()), 2;
  }
  rusage r0{};
  getrusage(RUSAGE_SELF, &r0);
  ChromSizes cs;
  cs.add("chr1", bases);
  const std::string path = out + "/bench_bigwig.bw";
  std::vector<double> secs;
  for (int rep = 0; rep < repeats; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    BigWigWriter w(path, cs);
    std::vector<float> v(1 << 20);
    uint32_t s = 1;
    for (int64_t p = 0; p < bases; p += static_cast<int64_t>(v.size())) {
      const int64_t k = std::min<int64_t>(static_cast<int64_t>(v.size()), bases - p);
      for (int64_t i = 0; i < k; ++i) s = s * 1664525u + 1013904223u, v[i] = static_cast<float>(s >> 8) * 1e-6f;
      w.add(0, p, v.data(), k);
    }
    w.commit();
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  rusage r1{};
  getrusage(RUSAGE_SELF, &r1);
  std::sort(secs.begin(), secs.end());
  std::printf("bases %lld  median %.2f s  (%d repeats)  peak RSS growth %.1f MB  file %.1f MB\n",
              static_cast<long long>(bases), secs[secs.size() / 2], repeats,
              static_cast<double>(r1.ru_maxrss - r0.ru_maxrss) / 1024.0,
              static_cast<double>(std::filesystem::file_size(path)) / 1e6);
  std::filesystem::remove(path);
  return 0;
}
