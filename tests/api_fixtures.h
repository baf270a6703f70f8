// Fixtures of the public-API test suites (test_api.cpp, test_api_robustness.cpp): small model configs, one-hot
// batches, a scratch folder, the largest difference of two arrays, the Fourier prior as a plain DFT loop.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <locale>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "include/lowpass/lowpass.h"
#include "include/lowpass/lowpass_c.h"
#include "models/attr/attribute.h"
#include "models/attr/model_dir.h"
#include "models/loss/objective.h"
#include "models/train/config.h"
#include "tests/errors.h"

// ASan refuses (aborts on) allocations past its own limit instead of failing them, so there the case is skipped.
#if defined(__SANITIZE_ADDRESS__)
#define LP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LP_TEST_ASAN 1
#endif
#endif

namespace lowpass::apitest {
using lowpass::api::Array;
namespace api = lowpass::api;
namespace fs = std::filesystem;


inline const char* kBinary64 =
    R"({"type": "binary", "dtype": "float64", "input_length": 37, "num_tasks": 2, "conv_depths": [6, 5],
        "conv_filter_sizes": [5, 3], "max_pool_size": 4, "max_pool_stride": 3, "fc_sizes": [7]})";
inline const char* kBinary32 =
    R"({"type": "binary", "input_length": 37, "num_tasks": 1, "conv_depths": [6, 5],
        "conv_filter_sizes": [5, 3], "max_pool_size": 4, "max_pool_stride": 3, "fc_sizes": [7]})";
inline const char* kProfile =
    R"({"type": "profile", "dtype": "float64", "input_length": 41, "output_length": 19, "num_tasks": 2,
        "num_strands": 2, "controls": "matched", "dil_conv_filter_sizes": [5, 3, 3],
        "dil_conv_dilations": [1, 2, 4], "dil_conv_depths": [6, 6, 6], "prof_conv_kernel_size": 7})";

inline Array onehot(int64_t N, int64_t L, uint64_t seed) {
  Array x = Array::zeros({N, 4, L});
  lowpass::Rng r(seed);
  for (int64_t b = 0; b < N; ++b)
    for (int64_t l = 0; l < L; ++l)
      if (r.uniform() > 0.03) x.mutable_data()[(b * 4 + r.randint(0, 4)) * L + l] = 1.f;  // some N columns
  return x;
}

inline fs::path tmpdir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("lowpass_api_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

inline double max_abs_diff(const Array& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data()[i]) - double(b.data()[i])));
  return m;
}

// The Fourier prior by plain loops (REFERENCE §1.2) in double: a = smooth(Σ|attr|), m = |DFT(a)|.
inline double plain_fourier_prior(const Array& attr, const std::vector<int>& status, int64_t K, double s, double sigma) {
  const int64_t N = attr.shape()[0], L = attr.shape()[2];
  std::vector<double> kern = {0.0, 1.0, 0.0};
  if (sigma > 0) {
    kern.clear();
    const int r = static_cast<int>(sigma + 0.5);  // scipy.ndimage: radius int(truncate·σ + 0.5), truncate 1
    double tot = 0;
    for (int i = -r; i <= r; ++i) kern.push_back(std::exp(-0.5 * i * i / (sigma * sigma))), tot += kern.back();
    for (double& w : kern) w /= tot;
  }
  const int64_t R = (static_cast<int64_t>(kern.size()) - 1) / 2;
  double sum = 0;
  int64_t P = 0;
  for (int64_t b = 0; b < N; ++b) {
    if (status[b] != 1) continue;
    ++P;
    std::vector<double> a(L, 0.0), sm(L, 0.0);
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t l = 0; l < L; ++l) a[l] += std::abs(double(attr.data()[(b * 4 + c) * L + l]));
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = -R; j <= R; ++j)
        if (l + j >= 0 && l + j < L) sm[l] += kern[j + R] * a[l + j];
    const int64_t nb = L / 2 + 1;
    std::vector<double> m(nb);
    double den = 0;
    for (int64_t k = 0; k < nb; ++k) {
      std::complex<double> z = 0;
      for (int64_t l = 0; l < L; ++l) z += sm[l] * std::polar(1.0, -2 * M_PI * double(k * l) / double(L));
      m[k] = std::abs(z);
      den += m[k];
    }
    if (den == 0) den = 1;
    double score = 0;
    for (int64_t k = 1; k < nb; ++k) score += (k <= K ? 1.0 : (s > 0 ? 1.0 / (1.0 + std::pow(double(k - K), s)) : 0.0)) * m[k] / den;
    sum += 1 - score;
  }
  return P ? sum / double(P) : 0.0;
}


// The message of the api::Error that f throws ("" when it throws none; a test failure when it throws another type).
template <typename F>
inline std::string error_of(F&& f) {
  return lowpass::test::error_of<api::Error>(std::forward<F>(f));
}
using lowpass::test::has;

}  // namespace lowpass::apitest
