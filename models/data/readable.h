// The check every data reader runs before opening a file, so each kind of file fails alike:
// "<what> '<path>': file not found | is a directory, expected a file | cannot read (<errno text>)".
#pragma once
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

}  // namespace lowpass
