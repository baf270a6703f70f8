// MEME minimal-format motif reader (letter-probability matrices over A, C, G, T).
// A motif is a (W, 4) matrix of base probabilities per position; rows are renormalised to sum 1.
// Test: build/tests/lowpass_tests -ts=simulate
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lowpass {

struct Motif {
  std::string id;    // e.g. "MA0080.6"
  std::string name;  // e.g. "Spi1" (empty when the MOTIF line has no alternate name)
  std::vector<std::array<double, 4>> pwm;  // (W, 4) probabilities, order A C G T
  int64_t width() const { return static_cast<int64_t>(pwm.size()); }
};

// Parse MEME text; `source` names the file in error messages ("file:line: ...").
std::vector<Motif> parse_meme(const std::string& text, const std::string& source);
// Read a MEME file. Throws Error naming the file when it cannot be read or parsed.
std::vector<Motif> read_meme(const std::string& path);
// Pick a motif by id or name (case-insensitive); empty `which` = the only/first motif.
const Motif& select_motif(const std::vector<Motif>& motifs, const std::string& which,
                          const std::string& source);
// The bundled default: JASPAR 2022 MA0080.6 (Spi1), identical to models/data/motifs/SPI1.meme.
Motif default_motif();
// PWM with a pseudocount: (p + pc) / (1 + 4 pc) per row (the reference uses pc = 1e-5).
Motif with_pseudocount(const Motif& m, double pc);

}  // namespace lowpass
