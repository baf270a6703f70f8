// The zoom levels BigWigWriter builds as it writes (models/data/bigwig_zoom.h), read back here with a parser of
// UCSC's layout written for this test (header, zoom headers, each level's R-tree walked to its leaves, blocks
// inflated) and compared record by record with a brute-force summary of the values: for each level's reduction r
// and each window [k r, (k + 1) r) of a chromosome, the written (nonzero) bases' count, min, max, sum, sum of
// squares and covered extent. Also: the levels chosen (libBigWig's rule: from 4× the mean item span), an empty
// track, the data still reading back, and the memory bound (a dense 8-Mb chromosome written in a child process
// stays far below libBigWig's ~14 bytes per base). UCSC's own reader checks the same files in
// python/tests/test_cli_tracks.py.
// Run: build/tests/lowpass_tests -tc='bigwig: zoom*'
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/data/bigwig.h"
#include "tests/genome_fixtures.h"

using namespace lowpass;

// Under AddressSanitizer freed memory sits in its quarantine and shadow memory grows with it: no RSS bound there.
#if defined(__SANITIZE_ADDRESS__)
#define LP_ZOOM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LP_ZOOM_TEST_ASAN 1
#endif
#endif

namespace {

struct ZoomRecord {
  uint32_t chrom, start, end, count;
  float min, max, sum, sumsq;
};

struct ZoomFile {
  std::vector<uint32_t> reductions;
  std::vector<std::vector<ZoomRecord>> records;  // per level, in file order
};

std::vector<char> file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

template <typename T>
T at(const std::vector<char>& b, uint64_t off) {
  REQUIRE(off + sizeof(T) <= b.size());
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

// Leaves of the R-tree at `index` (offset, size of each data block), in tree order.
void leaves(const std::vector<char>& b, uint64_t node, std::vector<std::pair<uint64_t, uint64_t>>& out) {
  const bool leaf = at<uint8_t>(b, node) != 0;
  const uint16_t n = at<uint16_t>(b, node + 2);
  for (uint16_t i = 0; i < n; ++i) {
    if (leaf) {
      const uint64_t item = node + 4 + 32 * static_cast<uint64_t>(i);
      out.push_back({at<uint64_t>(b, item + 16), at<uint64_t>(b, item + 24)});
    } else {
      leaves(b, at<uint64_t>(b, node + 4 + 24 * static_cast<uint64_t>(i) + 16), out);
    }
  }
}

ZoomFile read_zooms(const std::string& path) {
  const std::vector<char> b = file_bytes(path);
  REQUIRE(at<uint32_t>(b, 0) == 0x888FFC26u);
  REQUIRE(at<uint32_t>(b, b.size() - 4) == 0x888FFC26u);
  const uint32_t inflate_size = at<uint32_t>(b, 52);
  ZoomFile z;
  const uint16_t levels = at<uint16_t>(b, 6);
  for (uint16_t l = 0; l < levels; ++l) {
    const uint64_t h = 64 + 24 * static_cast<uint64_t>(l);
    z.reductions.push_back(at<uint32_t>(b, h));
    const uint64_t index = at<uint64_t>(b, h + 16);
    REQUIRE(at<uint32_t>(b, index) == 0x2468ACE0u);
    std::vector<std::pair<uint64_t, uint64_t>> blocks;
    leaves(b, index + 48, blocks);
    CHECK(at<uint64_t>(b, index + 8) == blocks.size());  // the header's item count
    z.records.emplace_back();
    for (auto [off, size] : blocks) {
      REQUIRE(off + size <= b.size());
      std::vector<unsigned char> raw(inflate_size);
      uLongf n = raw.size();
      REQUIRE(uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(b.data() + off), size) == Z_OK);
      REQUIRE(n % 32 == 0);
      for (uLongf r = 0; r < n; r += 32) {
        ZoomRecord rec;
        std::memcpy(&rec, raw.data() + r, 32);
        z.records.back().push_back(rec);
      }
    }
    CHECK(at<uint32_t>(b, at<uint64_t>(b, h + 8)) == z.records.back().size());  // the data's record count
  }
  return z;
}

// The records a level of reduction r must hold for per-base values (0 = not written).
std::vector<ZoomRecord> brute_force(const std::vector<std::vector<float>>& v, uint32_t r) {
  std::vector<ZoomRecord> out;
  for (uint32_t c = 0; c < v.size(); ++c) {
    const auto L = static_cast<uint32_t>(v[c].size());
    for (uint32_t w = 0; w * static_cast<uint64_t>(r) < L; ++w) {
      ZoomRecord rec{c, 0, 0, 0, INFINITY, -INFINITY, 0, 0};
      double sum = 0, sumsq = 0;
      for (uint32_t p = w * r; p < std::min<uint64_t>(L, (uint64_t{w} + 1) * r); ++p) {
        const float x = v[c][p];
        if (x == 0.0f) continue;
        if (rec.count++ == 0) rec.start = p;
        rec.end = p + 1;
        rec.min = std::min(rec.min, x), rec.max = std::max(rec.max, x);
        sum += x, sumsq += static_cast<double>(x) * x;
      }
      rec.sum = static_cast<float>(sum), rec.sumsq = static_cast<float>(sumsq);
      if (rec.count > 0) out.push_back(rec);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("bigwig: zoom levels written as the items pass equal a brute-force summary of the values") {
  TempDir d;
  ChromSizes cs;
  cs.add("dense", 300'000);   // per-base values (fixed-step blocks), runs and zero gaps
  cs.add("empty", 50'000);    // no value: no record
  cs.add("tiny", 11);         // shorter than the finest window
  cs.add("runs", 2'000'000);  // long constant runs crossing many windows
  Rng rng(21);
  std::vector<std::vector<float>> v;
  for (int64_t c = 0; c < cs.size(); ++c) v.emplace_back(static_cast<size_t>(cs.lengths[c]), 0.0f);
  for (size_t i = 0; i < v[0].size(); ++i) {
    const size_t m = i % 5000;
    v[0][i] = m < 3000 ? static_cast<float>(rng.uniform(-3, 5)) : m < 3500 ? 0.0f : m < 4200 ? 2.5f : -1.0f;
  }
  for (size_t i = 2; i < 9; ++i) v[2][i] = static_cast<float>(i);
  for (size_t i = 0; i < v[3].size();) {
    const size_t n = static_cast<size_t>(rng.randint(1, 40'000));
    const float x = rng.uniform() < 0.85 ? 0.0f : static_cast<float>(rng.uniform(0, 100));
    for (size_t j = i; j < std::min(v[3].size(), i + n); ++j) v[3][j] = x;
    i += n;
  }
  write_bigwig(d / "z.bw", cs, v);
  const ZoomFile z = read_zooms(d / "z.bw");
  // The items: runs of equal nonzero values. Their mean span is below 4 (per-base values dominate the count), so
  // the levels start at 16 and run to the longest chromosome with data (4^k · 16 <= 2,000,000: .. 1,048,576).
  double items = 0, covered = 0;
  for (const auto& c : v)
    for (size_t i = 0; i < c.size(); ++i)
      if (c[i] != 0.0f) covered += 1, items += i == 0 || c[i - 1] != c[i];
  REQUIRE(covered / items * 4 <= 16);
  REQUIRE(z.reductions == std::vector<uint32_t>{16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576});
  for (size_t l = 0; l < z.reductions.size(); ++l) {
    CAPTURE(z.reductions[l]);
    const auto want = brute_force(v, z.reductions[l]);
    const auto& got = z.records[l];
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      const ZoomRecord &g = got[i], &w = want[i];
      CHECK(g.chrom == w.chrom);
      CHECK(g.start == w.start);
      CHECK(g.end == w.end);
      CHECK(g.count == w.count);
      CHECK(g.min == w.min);
      CHECK(g.max == w.max);
      CHECK(g.sum == doctest::Approx(w.sum).epsilon(1e-6));
      CHECK(g.sumsq == doctest::Approx(w.sumsq).epsilon(1e-6));
    }
  }
  // The data reads back as written (the zoom levels follow it in the file).
  BigWig bw(d / "z.bw");
  for (int64_t c = 0; c < cs.size(); ++c) {
    std::vector<float> got(static_cast<size_t>(cs.lengths[c]));
    bw.values(cs.names[c], 0, cs.lengths[c], got.data());
    CHECK(got == v[static_cast<size_t>(c)]);
  }
}

TEST_CASE("bigwig: zoom levels start at 4x the mean item span; an empty track has none") {
  TempDir d;
  ChromSizes cs;
  cs.add("c", 5'000'000);
  std::vector<std::vector<float>> v{std::vector<float>(5'000'000, 0.0f)};
  for (size_t i = 0; i < v[0].size(); ++i) v[0][i] = (i / 1000) % 2 ? 0.0f : static_cast<float>(1 + (i / 2000) % 7);
  write_bigwig(d / "runs.bw", cs, v);  // items of 1,000 bases: the first level of at least 4,000 is 4,096
  const ZoomFile z = read_zooms(d / "runs.bw");
  CHECK(z.reductions == std::vector<uint32_t>{4096, 16384, 65536, 262144, 1048576, 4194304});
  for (size_t l = 0; l < z.reductions.size(); ++l) {
    const auto want = brute_force(v, z.reductions[l]);
    REQUIRE(z.records[l].size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(z.records[l][i].sum == doctest::Approx(want[i].sum).epsilon(1e-6));
  }
  std::vector<std::vector<float>> zeros{std::vector<float>(5'000'000, 0.0f)};
  write_bigwig(d / "zeros.bw", cs, zeros);
  CHECK(read_zooms(d / "zeros.bw").reductions.empty());
  BigWig bw(d / "zeros.bw");
  std::vector<float> got(100, 1.0f);
  bw.values("c", 0, 100, got.data());
  CHECK(std::count(got.begin(), got.end(), 0.0f) == 100);
}

TEST_CASE("bigwig: zoom levels of a dense chromosome take little memory") {
  // A child process writes a dense 8-Mb chromosome (every base its own value) and reports its peak RSS growth;
  // libBigWig's zoom levels took ~14 bytes per base (112 MB here), the streamed ones a few blocks.
  TempDir d;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    ChromSizes cs;
    cs.add("big", 8'000'000);
    int64_t grew = -1;
    try {
      BigWigWriter w(d / "big.bw", cs);
      std::vector<float> v(1 << 16);
      uint32_t s = 7;
      for (int64_t p = 0; p < 8'000'000; p += static_cast<int64_t>(v.size())) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(v.size()), 8'000'000 - p);
        for (int64_t i = 0; i < n; ++i) s = s * 1664525u + 1013904223u, v[i] = static_cast<float>(s >> 8) * 1e-6f;
        w.add(0, p, v.data(), n);
      }
      w.commit();
      rusage after{};
      getrusage(RUSAGE_SELF, &after);
      grew = (after.ru_maxrss - before.ru_maxrss) * 1024;  // bytes (ru_maxrss is in KiB)
    } catch (...) {
    }
    (void)!write(fds[1], &grew, sizeof grew);
    _exit(0);
  }
  close(fds[1]);
  int64_t grew = -2;
  REQUIRE(read(fds[0], &grew, sizeof grew) == static_cast<ssize_t>(sizeof grew));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  REQUIRE(grew >= 0);
#ifndef LP_ZOOM_TEST_ASAN
  CHECK(grew < 24'000'000);  // < 3 bytes per base; libBigWig's own levels: ~112 MB
#endif
  const ZoomFile z = read_zooms(d / "big.bw");
  CHECK(z.reductions.front() == 16);
  CHECK(z.records.front().size() == 500'000);
}

TEST_CASE("bigwig: zoom levels take one spill file per writer, whatever the levels") {
  // A profile model writes T·S tracks at once (predict --regions): a spill file per level would take ten descriptors
  // a track, 1,000 for 50 tasks × 2 strands, past the usual limit of 1,024.
  TempDir d;
  const auto open_fds = [] {
    int64_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  ChromSizes cs;
  cs.add("c", 3'000'000);
  const int64_t before = open_fds();
  {
    BigWigWriter w(d / "fds.bw", cs);
    std::vector<float> v(3'000'000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) + 0.5f;  // per-base values
    w.add(0, 0, v.data(), static_cast<int64_t>(v.size()));  // blocks spilled at levels 16, 64, 256 and 1,024
    CHECK(open_fds() - before <= 3);  // libBigWig's file, the AtomicFile's lock, the one spill file
    w.commit();
  }
  CHECK(open_fds() == before);
  const ZoomFile z = read_zooms(d / "fds.bw");
  REQUIRE(z.reductions.size() >= 4);
  std::vector<std::vector<float>> v{std::vector<float>(3'000'000)};
  for (size_t i = 0; i < v[0].size(); ++i) v[0][i] = static_cast<float>(i % 97) + 0.5f;
  for (size_t l = 0; l < z.reductions.size(); ++l) CHECK(z.records[l].size() == brute_force(v, z.reductions[l]).size());
}
