# The zoom levels of the bigWigs lowpass writes (models/data/bigwig_zoom.h: built as the items are written, not by
# libBigWig at close), read by UCSC's own code (pybbi wraps the kent library; skipped when it is not installed):
# for every zoom level of reduction r, summaries over bins of 4 r bases (UCSC then reads that level: the largest
# reduction <= half a bin) equal the same statistics computed here from the file's per-base data. The track is
# `lowpass attribute --regions` attr.bw (overlapping windows: dense values, gaps and a sparse chromosome).
# CLI: cli_run.py.
import random

import pytest

from cli_run import run_cli as run, simulated_runs

np = pytest.importorskip("numpy")
bbi = pytest.importorskip("bbi")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return simulated_runs(tmp_path_factory.mktemp("zoom"), controls=False)["profile"]


def test_ucsc_reads_every_zoom_level_as_the_data_summarised(model, tmp_path):
    rng = random.Random(7)
    lengths = {"chrA": 60000, "chrB": 45000}
    (tmp_path / "g.fa").write_text("".join(f">{c}\n" + "".join(rng.choice("ACGT") for _ in range(n)) + "\n"
                                           for c, n in lengths.items()))
    regions = [("chrA", s) for s in range(300, 40000, 120)] + [("chrB", s) for s in range(5000, 45000, 3000)]
    (tmp_path / "r.bed").write_text("".join(f"{c}\t{s}\t{s + 1}\n" for c, s in regions))
    r = run("attribute", "--model", model, "--regions", tmp_path / "r.bed", "--genome", tmp_path / "g.fa", "--out",
            tmp_path / "a", "--method", "gradxinput", "--quiet", "--threads", 1)
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
