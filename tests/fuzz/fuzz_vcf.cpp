// libFuzzer target: VCF/BCF files (htslib) read against a fixed genome by models/attr/variants.cpp, then every
// scored allele's REF/ALT windows built. Each window row must be one-hot or all zero (N). Only lowpass::Error may
// escape. Run: scripts/fuzz.sh 10 vcf (corpus: tests/fuzz/corpus/vcf/)
#include <string>

#include "models/attr/variants.h"
#include "tests/fuzz/fuzz_common.h"

using namespace lowpass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = fuzz::scratch_dir();
  static const std::string genome = [] {
    std::string p = dir + "/genome.fa";
    std::string s;
    for (int i = 0; i < 120; ++i) s += "ACGTTGCAacgtNNAC"[(i * 7 + i / 5) % 16];
    std::ofstream(p) << ">chr1\n" << s << "\n>chr2 description\n" << s.substr(0, 40) << "\n";
    return p;
  }();
  static Context ctx(1, 0);
  const std::string path = fuzz::write_input("v.vcf", data, size);
  try {
    attr::VariantSet v = attr::read_variants(path, genome, 21, dir + "/cache");
    if (v.size() == 0) return 0;  // nothing to score (a header-only file, or every allele skipped)
    Tensor ref;
    Tensor alt;
    attr::variant_rows(ctx, v, 0, v.size(), DType::F32, ref, alt);
    for (const Tensor* t : {&ref, &alt}) {
      const auto x = t->to_vector<float>();
      for (int64_t i = 0; i < v.size(); ++i)
        for (int64_t l = 0; l < 21; ++l) {
          float col = 0;
          for (int b = 0; b < 4; ++b) col += x[static_cast<size_t>((i * 4 + b) * 21 + l)];
          if (col != 0.0f && col != 1.0f) __builtin_trap();
        }
    }
  } catch (const Error&) {  // the expected answer to a bad file; anything else is a crash
  }
  return 0;
}
