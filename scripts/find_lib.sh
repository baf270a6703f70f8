# Sourced by scripts/gpu_lease.sh and scripts/cudnn_path.sh: lib_dir_anywhere PATTERN prints the directory of the
# first file or link named PATTERN anywhere on the machine (slow: a last resort after the known places), skipping
# /proc and debug-symbol trees (a directory named libcublas.so.13 under /root/.debug was once picked); "" if none.
lib_dir_anywhere() {
  local f
  f=$(find / -name "$1" \( -type f -o -type l \) -not -path '/proc/*' -not -path '*/.debug/*' 2>/dev/null | head -1)
  [ -n "$f" ] && dirname "$f"
  return 0
}
