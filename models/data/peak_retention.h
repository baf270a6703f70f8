// The reference's peak retention (REFERENCE §2.2, "keep1"): train on the top fraction of a peak file by signal.
// Shared by BinaryGenomeDataset and ProfileGenomeDataset. Test: build/tests/lowpass_tests -ts=genome
#pragma once
#include <string>
#include <vector>

#include "models/data/bed.h"

namespace lowpass {

// The ceil(fraction · n) peaks of highest signal (narrowPeak column 7, BED column 5; ties keep file order), returned
// in file order. Throws naming `file` (and the line) when a peak has no signal column, or when fraction drops peaks
// but every peak has the same signal: the ranking would then be file order (e.g. a narrowPeak whose signalValue
// column is all 0).
std::vector<Peak> top_peaks_by_signal(const std::vector<Peak>& peaks, double fraction, const std::string& file);

}  // namespace lowpass
