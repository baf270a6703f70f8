# `lowpass predict --regions` at scale (docs/cli.md, docs/reliability.md): one forward pass per batch feeds both
# arrays of predictions.npz and the pred_t<t>_s<s>.bw tracks (values checked against the npz); a stopped rerun keeps
# the earlier npz, regions.bed and tracks together; marginalize does not point at a regions.bed it never writes;
# UCSC's reader (pybbi) reads every zoom level of a written track as its data summarised.
# CLI: cli_run.py.
import os
import random
import signal
import subprocess
import time

import pytest

from cli_run import CLI, run_cli as run, simulated_runs

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return simulated_runs(tmp_path_factory.mktemp("tracks"), controls=False)["profile"]


def write_genome(d, lengths):
    rng = random.Random(5)
    (d / "g.fa").write_text("".join(f">{c}\n" + "".join(rng.choice("ACGT") for _ in range(n)) + "\n"
                                    for c, n in lengths.items()))
    return d / "g.fa"


def write_bed(path, regions):
    path.write_text("".join(f"{c}\t{s}\t{s + 1}\n" for c, s in regions))
    return path


def test_one_forward_pass_feeds_the_npz_and_the_tracks(model, tmp_path):
    fa = write_genome(tmp_path, {"chrA": 3000})
    summits = [600, 650, 1400, 2000]  # the first two overlap
    bed = write_bed(tmp_path / "r.bed", [("chrA", s) for s in summits])
    r = run("predict", "--model", model, "--regions", bed, "--genome", fa, "--out", tmp_path / "o", "--threads", 1)
    assert r.returncode == 0, r.stderr
    # Not a terminal: each bar prints its last line. One pass over the rows, then the tracks' write.
    passes = [ln for ln in r.stderr.splitlines() if ln.startswith("predict ")]
    assert len(passes) == 1 and "4/4 seq" in passes[0], r.stderr
    assert any(ln.startswith("write 2 bigWig track(s)") for ln in r.stderr.splitlines()), r.stderr
    with np.load(tmp_path / "o" / "predictions.npz") as z:
        assert z.files == ["profile_logits", "log_counts"]
        pl, lc = z["profile_logits"], z["log_counts"]
    assert pl.dtype == np.float32 and lc.dtype == np.float32
    assert pl.shape[:3] == (4, 1, 2) and lc.shape == (4, 1, 2)
    assert sorted(f.name for f in (tmp_path / "o").iterdir()) == ["pred_t0_s0.bw", "pred_t0_s1.bw",
                                                                  "predictions.npz", "regions.bed"]
    # The npz equals a second, separate run on the same windows given as a FASTA (same rows, same forward).
    starts = [int(ln.split("\t")[1]) for ln in (tmp_path / "o" / "regions.bed").read_text().splitlines()]
    seq = (tmp_path / "g.fa").read_text().split("\n")[1]
    L = int(open(tmp_path / "o" / "regions.bed").readline().split("\t")[2]) - starts[0]
    (tmp_path / "w.fa").write_text("".join(f">r{i}\n{seq[s:s + L]}\n" for i, s in enumerate(starts)))
    f = run("predict", "--model", model, "--fasta", tmp_path / "w.fa", "--out", tmp_path / "f", "--quiet",
            "--threads", 1)
    assert f.returncode == 0, f.stderr
    with np.load(tmp_path / "f" / "predictions.npz") as z:
        np.testing.assert_array_equal(z["profile_logits"], pl)
        np.testing.assert_array_equal(z["log_counts"], lc)


def test_tracks_written_as_the_windows_pass_equal_the_held_ones(model, tmp_path):
    # Regions in genome order are written to the bigWigs as the batches pass (predict and attribute); the same
    # regions shuffled are held until the end. Same windows (apart, so that no base sums windows in another order),
    # same blocks in the same order: identical files. Batches of one row: a row's log counts may differ in the last
    # bit with the other rows of its batch (the dense head's GEMM), which the shuffle changes; gradient × input,
    # as deepshap's shuffled references are seeded by the row.
    fa = write_genome(tmp_path, {"chrA": 20000, "chrB": 9000})
    regions = [("chrA", s) for s in range(700, 19300, 450)] + [("chrB", s) for s in range(700, 8300, 450)]
    shuffled = regions[:]
    random.Random(3).shuffle(shuffled)
    for name, rs in (("sorted", regions), ("shuffled", shuffled)):
        bed = write_bed(tmp_path / f"{name}.bed", rs)
        for cmd, method in (("predict", []), ("attribute", ["--method", "gradxinput"])):
            r = run(cmd, "--model", model, "--regions", bed, "--genome", fa, "--out", tmp_path / f"{cmd}_{name}",
                    "--batch", 1, "--quiet", "--threads", 1, *method)
            assert r.returncode == 0, r.stderr
    widths = {int(e) - int(b) for _, b, e, *_ in
              (ln.split("\t") for ln in (tmp_path / "attribute_sorted" / "regions.bed").read_text().splitlines())}
    assert len(widths) == 1 and widths.pop() < 450
    for cmd, tracks in (("predict", ["pred_t0_s0.bw", "pred_t0_s1.bw"]), ("attribute", ["attr.bw"])):
        for t in tracks:
            a = (tmp_path / f"{cmd}_sorted" / t).read_bytes()
            b = (tmp_path / f"{cmd}_shuffled" / t).read_bytes()
            assert a == b, (cmd, t)
    # attr.bw has a value at every base of every window. (The predicted tracks can be all zeros: this one-epoch
    # model may predict fewer than one read per window; the release order is still checked, since a window added
    # after its blocks were written aborts the run.)
    assert len((tmp_path / "attribute_sorted" / "attr.bw").read_bytes()) > 10000
    # ohe.npz (appended a batch at a time): row i is the one-hot window of regions.bed's line i.
    genome = dict(zip(["chrA", "chrB"], [ln for ln in fa.read_text().splitlines() if not ln.startswith(">")]))
    for name in ("sorted", "shuffled"):
        out = tmp_path / f"attribute_{name}"
        with np.load(out / "ohe.npz") as z:
            ohe = z["arr_0"]
        lines = [ln.split("\t") for ln in (out / "regions.bed").read_text().splitlines()]
        assert ohe.shape == (len(lines), 4, int(lines[0][2]) - int(lines[0][1]))
        for i, (c, b, e, *_) in enumerate(lines):
            seq = genome[c][int(b):int(e)]
            want = np.array([[float(ch == base) for ch in seq] for base in "ACGT"], dtype=np.float32)
            np.testing.assert_array_equal(ohe[i], want, err_msg=f"{name} row {i}")


def test_a_stopped_rerun_keeps_the_earlier_npz_regions_and_tracks_together(model, tmp_path):
    if not os.access(CLI, os.X_OK):
        pytest.skip("no CLI")
    fa = write_genome(tmp_path, {"chrA": 20000, "chrB": 20000})
    out = tmp_path / "o"
    first = write_bed(tmp_path / "a.bed", [("chrA", s) for s in range(1000, 19000, 900)])
    r = run("predict", "--model", model, "--regions", first, "--genome", fa, "--out", out, "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    names = ["predictions.npz", "regions.bed", "pred_t0_s0.bw", "pred_t0_s1.bw"]
    earlier = {n: (out / n).read_bytes() for n in names}
    inode = (out / "predictions.npz").stat().st_ino
    rng = random.Random(3)
    second = write_bed(tmp_path / "b.bed", [(rng.choice(["chrA", "chrB"]), rng.randrange(1000, 19000))
                                            for _ in range(40000)])
    p = subprocess.Popen([CLI, "predict", "--model", model, "--regions", second, "--genome", fa, "--out", out,
                          "--quiet", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    # Stop it once a new output appears (before the fix: predictions.npz renamed while the tracks were still to be
    # computed) or a track's temporary is written.
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if (out / "predictions.npz").stat().st_ino != inode or list(out.glob("pred_t*.bw.tmp.*")):
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    now = {n: (out / n).read_bytes() for n in names}
    same = [now[n] == earlier[n] for n in names]
    # The outputs are one set or the other, never a mix, and no temporary is left.
    assert all(same) or not any(same), (p.returncode, same, err)
    assert [f.name for f in out.iterdir() if ".tmp." in f.name] == []
    # Stopped before the renames: exit 130. The signal can also land after the last rename, while the process is
    # leaving (the stop handler is gone: killed by SIGINT, -2) — then every output is the new run's.
    if all(same):
        assert p.returncode == 128 + signal.SIGINT, (p.returncode, err)
    else:
        assert p.returncode in (0, 128 + signal.SIGINT, -signal.SIGINT), (p.returncode, err)


def test_marginalize_does_not_point_at_a_regions_bed(model, tmp_path):
    fa = write_genome(tmp_path, {"chrA": 3000})
    bed = write_bed(tmp_path / "r.bed", [("chrA", 5), ("chrA", 1500), ("chrA", 1600)])  # the first runs off
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 one\nletter-probability matrix: alength= 4 w= 3\n"
                    "1 0 0 0\n0 1 0 0\n0 0 1 0\n")
    for cmd, extra in [("marginalize", ["--motifs", meme, "--backgrounds", 2]), ("predict", [])]:
        r = run(cmd, "--model", model, "--regions", bed, "--genome", fa, "--out", tmp_path / cmd, "--quiet",
                "--threads", 1, *extra)
        assert r.returncode == 0, r.stderr
        assert "1 of 3 regions dropped" in r.stderr, r.stderr
        assert ("regions.bed maps each output row" in r.stderr) == (cmd == "predict"), r.stderr
        assert (tmp_path / cmd / "regions.bed").exists() == (cmd == "predict")


def test_ucsc_reads_every_zoom_level_as_the_data_summarised(model, tmp_path):
    # The zoom levels of the bigWigs lowpass writes (models/data/bigwig_zoom.h: built as the items are written, not
    # by libBigWig at close), read by UCSC's own code (pybbi wraps the kent library; skipped when not installed):
    # for every zoom level of reduction r, summaries over bins of 4 r bases (UCSC then reads that level: the largest
    # reduction <= half a bin) equal the same statistics computed here from the file's per-base data. The track:
    # attr.bw of overlapping windows (dense values), gaps and a sparse chromosome.
    bbi = pytest.importorskip("bbi")
    lengths = {"chrA": 60000, "chrB": 45000}
    fa = write_genome(tmp_path, lengths)
    bed = write_bed(tmp_path / "r.bed", [("chrA", s) for s in range(300, 40000, 120)] +
                    [("chrB", s) for s in range(5000, 45000, 3000)])
    r = run("attribute", "--model", model, "--regions", bed, "--genome", fa, "--out", tmp_path / "a", "--method",
            "gradxinput", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    path = str(tmp_path / "a" / "attr.bw")
    zooms = bbi.zooms(path)
    assert zooms[:3] == [16, 64, 256], zooms  # per-base values: from 16, each level 4x coarser
    info = bbi.info(path)
    assert info["zoomLevels"] == len(zooms)
    checked = 0
    for chrom, n in lengths.items():
        raw = bbi.fetch(path, chrom, 0, n, missing=np.nan)  # the data section, per base
        for red in zooms:
            width = 4 * red
            bins = n // width
            if bins == 0:
                continue
            end = bins * width
            x = raw[:end].reshape(bins, width)
            have = ~np.isnan(x)
            cov = have.mean(axis=1)
            assert np.allclose(bbi.fetch(path, chrom, 0, end, bins=bins, summary="cov"), cov, rtol=1e-6, atol=0)
            used = cov > 0
            if not used.any():
                continue
            with np.errstate(all="ignore"):
                mean = np.nansum(x, axis=1) / have.sum(axis=1)
            got = bbi.fetch(path, chrom, 0, end, bins=bins, summary="mean", missing=np.nan)
            scale = np.nanmean(np.abs(x))  # sums of mixed signs: an absolute tolerance at the values' scale
            np.testing.assert_allclose(got[used], mean[used], rtol=1e-5, atol=1e-5 * scale, err_msg=f"{chrom} {red}")
            for name, f in (("min", np.nanmin), ("max", np.nanmax)):
                got = bbi.fetch(path, chrom, 0, end, bins=bins, summary=name, missing=np.nan)
                want = f(x[used], axis=1)
                np.testing.assert_allclose(got[used], want, rtol=1e-6, atol=0, err_msg=f"{chrom} {red} {name}")
            checked += 1
    assert checked >= 6
