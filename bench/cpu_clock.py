# Runs a timing script (bench_torch.py, bench_bpnetlite.py) unchanged and adds the process CPU time per timed step
# to its JSON line: records time.process_time() at each time.perf_counter() call (two per step), pairs them.
# Usage: python bench/cpu_clock.py bench/bench_torch.py --model binary --mode prior --warmup 1 ...
import contextlib
import io
import json
import runpy
import sys
import time


def main():
    script, args = sys.argv[1], sys.argv[2:]
    warmup = int(args[args.index("--warmup") + 1]) if "--warmup" in args else 2
    marks, wall = [], time.perf_counter

    def clock():
        marks.append(time.process_time())
        return wall()

    time.perf_counter = clock
    sys.argv = [script] + args
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        runpy.run_path(script, run_name="__main__")
    time.perf_counter = wall
    steps = [marks[i + 1] - marks[i] for i in range(0, len(marks) - 1, 2)][warmup:]
    for line in buf.getvalue().splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if steps:
                r["cpu_s_per_step"] = sum(steps) / len(steps)
            line = json.dumps(r)
        print(line)


if __name__ == "__main__":
    main()
