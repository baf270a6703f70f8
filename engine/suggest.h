// "Did you mean" for a misspelt name (a config key, a model hyper-parameter): the closest known name by edit
// distance (insertions, deletions, substitutions, adjacent swaps), when it is close enough to be a typo.
// Test: build/tests/lowpass_tests -ts=config
#pragma once
#include <algorithm>
#include <string>
#include <vector>

namespace lowpass {

// Optimal-string-alignment distance between a and b.
inline size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

// " (did you mean 'lr'?)" for the closest of `names` within max(1, |key|/3) edits, else "".
inline std::string did_you_mean(const std::string& key, const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  size_t best_d = std::max<size_t>(1, key.size() / 3) + 1;
  for (const std::string& n : names) {
    const size_t d = edit_distance(key, n);
    if (d < best_d) best_d = d, best = &n;
  }
  return best ? " (did you mean '" + *best + "'?)" : "";
}

// The same over the keys of a JSON object (anything whose iterators have key(): a config section's defaults).
template <class Object>
std::string did_you_mean_key(const std::string& key, const Object& known) {
  std::vector<std::string> names;
  for (auto it = known.begin(); it != known.end(); ++it) names.push_back(it.key());
  return did_you_mean(key, names);
}

}  // namespace lowpass
