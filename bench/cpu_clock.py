# Runs a timing script (bench_torch.py, bench_bpnetlite.py) unchanged and adds the process CPU time per timed step
# to its JSON line: records time.process_time() at each of the script's own time.perf_counter() calls (once per
# warm-up step, twice per timed step) and pairs the timed ones.
# Usage: python bench/cpu_clock.py bench/bench_torch.py --model binary --mode prior --warmup 1 ...
import contextlib
import io
import json
import os
import runpy
import sys
import time


def main():
    script, args = sys.argv[1], sys.argv[2:]
    warmup = int(args[args.index("--warmup") + 1]) if "--warmup" in args else 2
    marks, wall = [], time.perf_counter
    here = os.path.abspath(script)

    def clock():  # only the script's own calls (torch, tqdm etc. call perf_counter too)
        if os.path.abspath(sys._getframe(1).f_code.co_filename) == here:
            marks.append(time.process_time())
        return wall()

    time.perf_counter = clock
    sys.argv = [script] + args
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        runpy.run_path(script, run_name="__main__")
    time.perf_counter = wall
    marks = marks[warmup:]  # warm-up steps read the clock once (start only); timed steps twice
    steps = [marks[i + 1] - marks[i] for i in range(0, len(marks) - 1, 2)]
    for line in buf.getvalue().splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if steps:
                r["cpu_s_per_step"] = sum(steps) / len(steps)
            line = json.dumps(r)
        print(line)


if __name__ == "__main__":
    main()
