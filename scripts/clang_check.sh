#!/usr/bin/env bash
# Compiles every test source with clang++ -fsyntax-only, using the flags meson recorded for BUILD
# (compile_commands.json): the tests must keep building with Debian's clang 14, which, unlike gcc and clang >= 16,
# cannot capture structured bindings in lambdas (doctest's INFO/CHECK make lambdas). Parallel over the cores.
# Usage: scripts/clang_check.sh [BUILD=build]   (exit 1 when any source fails; skips without clang++)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
CXX=${CLANG_CXX:-$(command -v clang++ || true)}
if [ -z "$CXX" ]; then echo "clang_check: no clang++, skipped"; exit 0; fi
[ -f "$build/compile_commands.json" ] || { echo "clang_check: $build/compile_commands.json missing" >&2; exit 1; }
out=$(mktemp -d)
python3 - "$build/compile_commands.json" "$CXX" "$out" > "$out/cmds" <<'PY'
import json, shlex, sys
cc, cxx, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for c in cc:
    f = c["file"]
    if "/tests/" not in f or not f.endswith(".cpp") or "/fuzz/" in f:
        continue
    parts = shlex.split(c["command"]) if "command" in c else c["arguments"]
    args, i = [cxx], 1
    while i < len(parts):
        p = parts[i]
        if p in ("-o", "-MQ", "-MF"):
            i += 2
            continue
        if p in ("-MD", "-c"):
            i += 1
            continue
        if not p.startswith(("-fno-semantic-interposition", "-Wno-maybe-uninitialized")):
            args.append(p)
        i += 1
    args += ["-fsyntax-only", "-fno-color-diagnostics"]
    name = f.rsplit("/", 1)[-1]
    print(f"cd {shlex.quote(c['directory'])} && {' '.join(map(shlex.quote, args))} > {out}/{name}.log 2>&1 "
          f"|| echo {name} >> {out}/failed")
PY
n=$(wc -l < "$out/cmds")
xargs -P "$(nproc)" -d '\n' -n 1 bash -c < "$out/cmds"
if [ -s "$out/failed" ]; then
  for f in $(cat "$out/failed"); do echo "== $f"; grep -m 20 "error" "$out/$f.log"; done
  echo "clang_check: $(wc -l < "$out/failed") of $n test sources failed with $($CXX --version | head -1)" >&2
  exit 1
fi
echo "clang_check: $n test sources compile with $($CXX --version | head -1)"
rm -rf "$out"
