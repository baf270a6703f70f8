// The check every data reader runs before opening a file, so each kind of file fails alike:
// "<what> '<path>': file not found | is a directory, expected a file | cannot read (<errno text>)".
#pragma once
#include <htslib/bgzf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "engine/error.h"

namespace lowpass {

inline void check_readable(const std::string& path, const std::string& what) {
  LP_CHECK(!path.empty(), what, ": no file given");
  std::error_code ec;
  LP_CHECK(std::filesystem::exists(path, ec), what, " '", path, "': file not found");
  LP_CHECK(!std::filesystem::is_directory(path, ec), what, " '", path, "': is a directory, expected a file");
  LP_CHECK(access(path.c_str(), R_OK) == 0, what, " '", path, "': cannot read (", std::strerror(errno), ")");
}

// Why a file opened with bgzf_open cannot be read whole ("" when it can): a bgzip file cut at a block boundary reads
// as a shorter file (htslib only warns), so records would be lost without an error; its end-of-file block tells.
// Plain text, plain gzip (whose own trailer is checked as it is read) and a pipe (which cannot be checked) pass.
inline std::string bgzip_truncation(BGZF* fp) {
  if (!fp || !fp->is_compressed || fp->is_gzip) return "";
  const int eof = bgzf_check_EOF(fp);
  return eof > 0  ? ""
         : eof == 0 ? "the bgzip end-of-file block is missing (a truncated file? re-copy or re-compress it)"
                    : "cannot check the bgzip end-of-file block (read error)";
}

}  // namespace lowpass
