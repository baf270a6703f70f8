// Peak retention by signal (models/data/peak_retention.h). Test: build/tests/lowpass_tests -ts=genome
#include "models/data/peak_retention.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace lowpass {

std::vector<Peak> top_peaks_by_signal(const std::vector<Peak>& peaks, double fraction, const std::string& file) {
  for (const Peak& p : peaks)
    LP_CHECK(p.has_signal, file, ":", p.line, ": data.peak_retention ranks peaks by signal, but this line has no "
             "signal column (narrowPeak column 7 or BED column 5)");
  const size_t keep = std::min(peaks.size(), static_cast<size_t>(std::ceil(fraction * double(peaks.size()))));
  if (keep == peaks.size()) return peaks;
  const bool all_equal = std::all_of(peaks.begin(), peaks.end(), [&](const Peak& p) {
    return p.signal == peaks.front().signal;
  });
  LP_CHECK(!all_equal, file, ": data.peak_retention ranks peaks by signal (narrowPeak column 7, BED column 5), but "
           "all ", peaks.size(), " peaks have the same signal (", peaks.front().signal, "), so the kept ", keep,
           " would just be the first in file order. Rank by another column by writing it as column 5 of a BED file "
           "(e.g. `cut -f1-5` keeps a narrowPeak's score), or set data.peak_retention to 0");
  std::vector<size_t> order(peaks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return peaks[a].signal > peaks[b].signal; });
  order.resize(keep);
  std::sort(order.begin(), order.end());  // back to file order
  std::vector<Peak> out;
  out.reserve(keep);
  for (size_t i : order) out.push_back(peaks[i]);
  return out;
}

}  // namespace lowpass
