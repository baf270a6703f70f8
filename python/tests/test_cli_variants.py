# `lowpass variants` (docs/cli.md): VCF alleles scored REF vs ALT in windows centred on each variant. Trains tiny
# binary and profile models on simulated npz data, writes a random genome and a VCF, and checks the scores against
# `lowpass predict --fasta` of the same windows spelled out here (forward strand), the reverse-complement mean, the
# columns of each model type and the errors. The CLI: python/tests/cli_run.py.
import csv
import json
import math
import random
import re

import pytest

from cli_run import run_cli as run, simulated_runs

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("variants")
    out = simulated_runs(d, controls=False)  # a genome-free VCF run has no control bigWigs
    rng = random.Random(7)
    genome = {"chrA": "".join(rng.choice("ACGT") for _ in range(1500)),
              "chrB": "".join(rng.choice("ACGT") for _ in range(900))}
    (d / "g.fa").write_text("".join(f">{k}\n{v}\n" for k, v in genome.items()))
    out["genome"], out["seq"], out["dir"] = d / "g.fa", genome, d
    return out


def write_vcf(path, rows):
    head = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    path.write_text(head + "".join(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t.\n" for c, p, i, r, a in rows))


def read_tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def variant_rows(seq):
    a = seq["chrA"]
    snv = "C" if a[699] != "C" else "G"
    b = seq["chrB"][449]
    return [("chrA", 700, "snv", a[699], snv), ("chrB", 450, ".", b, "T" if b != "T" else "A"),
            ("chrA", 900, "del", a[899:903], a[899]), ("chrA", 1000, "ins", a[999], a[999] + "GGA"),
            ("chrA", 1200, "sym", a[1199], "<DUP>")]


def test_binary_scores_equal_predict_on_the_spelled_out_windows(models, tmp_path):
    seq = models["seq"]
    rows = variant_rows(seq)
    write_vcf(tmp_path / "v.vcf", rows)
    r = run("variants", "--model", models["binary"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--out", tmp_path / "fwd", "--no-revcomp", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    assert "4 allele(s) of 5 record(s); 1 non-sequence allele(s) skipped" in r.stdout, r.stdout
    got = read_tsv(tmp_path / "fwd" / "variant_scores.tsv")
    assert [g["id"] for g in got] == ["snv", ".", "del", "ins"]
    assert list(got[0]) == ["chrom", "pos", "id", "ref", "alt", "record", "logit_ref", "logit_alt", "logit_diff"]
    assert [g["record"] for g in got] == ["1", "2", "3", "4"]
    # The same windows, spelled out: L = 200, the variant at index 100.
    L, h, recs = 200, 100, []
    for c, p, _, ref, alt in rows[:4]:
        s = seq[c]
        start = p - 1 - h
        recs.append(s[start:start + L])
        recs.append((s[start:p - 1] + alt + s[p - 1 + len(ref):])[:L])
    (tmp_path / "w.fa").write_text("".join(f">w{i}\n{x}\n" for i, x in enumerate(recs)))
    p = run("predict", "--model", models["binary"], "--fasta", tmp_path / "w.fa", "--out", tmp_path / "p", "--quiet",
            "--threads", 1)
    assert p.returncode == 0, p.stderr
    logits = np.load(tmp_path / "p" / "predictions.npz")["logits"][:, 0]
    for i, g in enumerate(got):
        assert float(g["logit_ref"]) == pytest.approx(logits[2 * i], abs=2e-5)
        assert float(g["logit_alt"]) == pytest.approx(logits[2 * i + 1], abs=2e-5)
        assert float(g["logit_diff"]) == pytest.approx(logits[2 * i + 1] - logits[2 * i], abs=4e-5)
    # In-silico mutagenesis of the REF window agrees: hyp[alt] − hyp[ref] at the centre is f(alt) − f(ref).
    (tmp_path / "snv.fa").write_text(f">snv\n{recs[0]}\n")
    p = run("attribute", "--model", models["binary"], "--fasta", tmp_path / "snv.fa", "--method", "ism",
            "--out", tmp_path / "ism", "--quiet", "--threads", 1)
    assert p.returncode == 0, p.stderr
    hyp = np.load(tmp_path / "ism" / "attr.npz")["arr_0"][0]
    b = {c: i for i, c in enumerate("ACGT")}
    ism = hyp[b[rows[0][4]], h] - hyp[b[rows[0][3]], h]
    assert float(got[0]["logit_diff"]) == pytest.approx(ism, abs=4e-5)
    # The page: the largest |logit_diff| first, two logos (REF, ALT) per allele drawn.
    page = (tmp_path / "fwd" / "variants.html").read_text()
    assert page.count("<svg") == 2 * 4 and "4 of 4 alleles with the largest |logit_diff|" in page
    # REF and ALT logos on one score scale, the variant shaded
    for ref_logo, alt_logo in zip(*[iter(re.findall(r"<svg.*?</svg>", page, re.S))] * 2):
        shared = [re.search(r"scale shared: ([^ ]+) full height", s).group(1) for s in (ref_logo, alt_logo)]
        assert shared[0] == shared[1] and "class='mark'" in ref_logo and "class='mark'" in alt_logo
    top = max(got, key=lambda g: abs(float(g["logit_diff"])))
    assert page.index(f"{top['chrom']}:{top['pos']} {top['ref']}&gt;{top['alt']}") < page.index("<h2>2. ")
    # Default: the mean with the reverse complement, a different number for a trained model.
    r = run("variants", "--model", models["binary"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--out", tmp_path / "both", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    both = read_tsv(tmp_path / "both" / "variant_scores.tsv")
    assert any(abs(float(b["logit_ref"]) - float(g["logit_ref"])) > 1e-6 for b, g in zip(both, got))


def test_jsd_aligned_does_not_depend_on_how_an_indel_is_written(models, tmp_path):
    a = models["seq"]["chrA"]
    rows = [("chrA", 900, "short", a[899:903], a[899]),                 # 3 bases deleted after the anchor
            ("chrA", 900, "untrimmed", a[899:905], a[899] + a[903:905]),  # the same haplotype, two more bases
            ("chrA", 1000, "ins", a[999], a[999] + "GGA"),
            ("chrA", 1000, "ins_untrimmed", a[999:1002], a[999] + "GGA" + a[1000:1002])]
    write_vcf(tmp_path / "v.vcf", rows)
    r = run("variants", "--model", models["profile"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--out", tmp_path / "o", "--quiet", "--threads", 1, "--plot", 0)
    assert r.returncode == 0, r.stderr
    got = read_tsv(tmp_path / "o" / "variant_scores.tsv")
    for x, y in ((got[0], got[1]), (got[2], got[3])):
        for s in range(2):  # the same windows: the same numbers in every column
            for col in ("logfc", "jsd", "jsd_aligned"):
                assert x[f"{col}_t0_s{s}"] == y[f"{col}_t0_s{s}"], (col, x, y)


def test_profile_scores_have_log_fold_changes_and_divergences(models, tmp_path):
    write_vcf(tmp_path / "v.vcf", variant_rows(models["seq"])[:2])
    r = run("variants", "--model", models["profile"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--out", tmp_path / "o", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    got = read_tsv(tmp_path / "o" / "variant_scores.tsv")
    assert len(got) == 2
    page = (tmp_path / "o" / "variants.html").read_text()  # per allele: one profile chart (1 task), two logos
    assert page.count("<svg") == 2 * 3 and "predicted counts, REF vs ALT" in page
    cols = list(got[0])
    assert cols[:5] == ["chrom", "pos", "id", "ref", "alt"]
    assert "logfc_t0_s0" in cols and "jsd_t0_s1" in cols  # 1 task, 2 strands
    for g in got:
        fc = float(g["logfc_t0_s0"])
        assert fc == pytest.approx(float(g["log_counts_alt_t0_s0"]) - float(g["log_counts_ref_t0_s0"]), abs=1e-5)
        assert 0 <= float(g["jsd_t0_s0"]) <= math.log(2)


def test_a_wrong_genome_build_names_the_record(models, tmp_path):
    seq = models["seq"]
    wrong = "A" if seq["chrA"][699] != "A" else "C"
    write_vcf(tmp_path / "v.vcf", [("chrA", 700, "x", wrong, "T")])
    r = run("variants", "--model", models["binary"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--out", tmp_path / "o")
    assert r.returncode == 1, r.stderr
    assert "v.vcf: record 1 (chrA:700): REF" in r.stderr and "another genome build" in r.stderr, r.stderr
    assert not (tmp_path / "o" / "variant_scores.tsv").exists()


def test_several_models_are_averaged_and_an_empty_vcf_gives_a_header(models, tmp_path):
    write_vcf(tmp_path / "v.vcf", variant_rows(models["seq"])[:2])
    common = ["--vcf", tmp_path / "v.vcf", "--genome", models["genome"], "--quiet", "--threads", 1, "--no-revcomp"]
    one = run("variants", "--model", models["binary"], "--out", tmp_path / "one", *common)
    assert one.returncode == 0, one.stderr
    # A second model: the same config trained from another seed. Scores of the pair = the mean of their scores.
    cfg = json.loads((models["dir"] / "binary.json").read_text())
    cfg["train"]["seed"] = 2
    (tmp_path / "seed2.json").write_text(json.dumps(cfg))
    t = run("train", "--config", tmp_path / "seed2.json", "--out", tmp_path / "seed2", "--quiet")
    assert t.returncode == 0, t.stderr
    other = run("variants", "--model", tmp_path / "seed2", "--out", tmp_path / "other", *common)
    two = run("variants", "--model", models["binary"], tmp_path / "seed2", "--out", tmp_path / "two", *common)
    assert other.returncode == 0 and two.returncode == 0, other.stderr + two.stderr
    assert "mean of 2 models" in two.stdout, two.stdout
    a, b, m = (read_tsv(tmp_path / k / "variant_scores.tsv") for k in ("one", "other", "two"))
    for x, y, z in zip(a, b, m):
        assert float(x["logit_alt"]) != float(y["logit_alt"])
        assert float(z["logit_alt"]) == pytest.approx((float(x["logit_alt"]) + float(y["logit_alt"])) / 2, abs=2e-6)
    bad = run("variants", "--model", models["binary"], "--model", models["profile"], "--out", tmp_path / "bad",
              *common)
    assert bad.returncode == 1 and "cannot be averaged" in bad.stderr, bad.stderr
    # A header-only VCF (an empty shard of a split file) writes the header and exits 0.
    write_vcf(tmp_path / "empty.vcf", [])
    e = run("variants", "--model", models["profile"], "--vcf", tmp_path / "empty.vcf", "--genome", models["genome"],
            "--out", tmp_path / "empty", "--quiet")
    assert e.returncode == 0, e.stderr
    lines = (tmp_path / "empty" / "variant_scores.tsv").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chrom\tpos\tid\tref\talt\trecord\tlog_counts_ref_t0_s0")
    # A bad --out fails before the VCF is read, in the one-line error shape.
    (tmp_path / "afile").write_text("x")
    o = run("variants", "--model", models["binary"], "--out", tmp_path / "afile", *common)
    assert o.returncode == 1 and o.stderr.startswith("lowpass: error: ") and "afile" in o.stderr, o.stderr
    assert f"{tmp_path / 'afile'}: cannot create the output folder (--out): a file of that name exists" in o.stderr


def revcomp(s):
    return s[::-1].translate(str.maketrans("ACGTacgtN", "TGCAtgcaN"))


def windows(seq, rows, L):
    """REF and ALT windows of L bases, the variant at L // 2, spelled out as docs/cli.md describes."""
    out, h = [], L // 2
    for c, p, _, ref, alt in rows:
        s = seq[c]
        start = p - 1 - h
        out.append(s[start:start + L])
        out.append((s[start:p - 1] + alt + s[p - 1 + len(ref):])[:L])
    return out


def softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def jsd(p, q):
    m = (p + q) / 2
    kl = lambda a: np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / np.where(m > 0, m, 1)), 0))
    return (kl(p) + kl(q)) / 2


def aligned(pr, pa, ref_allele, alt_allele, L):
    """The REF and ALT profiles on the positions they share, as docs/cli.md describes jsd_aligned: alleles trimmed to
    their shortest form, the first min(|REF|, |ALT|) changed bases pair up, later bases pair with the length change's
    shift; renormalised."""
    O = len(pr)
    while ref_allele and alt_allele and ref_allele[-1] == alt_allele[-1]:  # shortest form: common suffix, then prefix
        ref_allele, alt_allele = ref_allele[:-1], alt_allele[:-1]
    p = 0
    while p < min(len(ref_allele), len(alt_allele)) and ref_allele[p] == alt_allele[p]:
        p += 1
    ref_allele, alt_allele = ref_allele[p:], alt_allele[p:]
    c = L // 2 - (L - O) // 2 + p  # the first changed base in the output window
    r, a = len(ref_allele), len(alt_allele)
    pairs = [(q, q) for q in range(c + min(r, a))] + [(q, q - r + a) for q in range(c + r, O) if 0 <= q - r + a < O]
    x, y = np.array([pr[q] for q, _ in pairs]), np.array([pa[j] for _, j in pairs])
    return x / x.sum(), y / y.sum()


def test_the_reverse_complement_mean_is_that_of_logits_and_log_counts_flipped_back(models, tmp_path):
    rows = variant_rows(models["seq"])[:4]  # SNV, SNV, deletion, insertion
    write_vcf(tmp_path / "v.vcf", rows)
    for kind in ("binary", "profile"):
        r = run("variants", "--model", models[kind], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
                "--out", tmp_path / kind, "--quiet", "--threads", 1, "--plot", 0)
        assert r.returncode == 0, r.stderr
        got = read_tsv(tmp_path / kind / "variant_scores.tsv")
        L = 200 if kind == "binary" else None
        if L is None:  # the profile model's input length, from its config
            L = json.loads((models[kind] / "config.json").read_text())["model"]["input_length"]
        w = windows(models["seq"], rows, L)
        (tmp_path / f"{kind}.fa").write_text("".join(f">w{i}\n{x}\n>r{i}\n{revcomp(x)}\n" for i, x in enumerate(w)))
        p = run("predict", "--model", models[kind], "--fasta", tmp_path / f"{kind}.fa", "--out", tmp_path / f"p{kind}",
                "--quiet", "--threads", 1)
        assert p.returncode == 0, p.stderr
        out = np.load(tmp_path / f"p{kind}" / "predictions.npz")
        if kind == "binary":
            lg = out["logits"][:, 0].astype(np.float64)
            mean = (lg[0::2] + lg[1::2]) / 2  # forward and reverse complement of each window
            for i, g in enumerate(got):
                assert float(g["logit_ref"]) == pytest.approx(mean[2 * i], abs=3e-5)
                assert float(g["logit_alt"]) == pytest.approx(mean[2 * i + 1], abs=3e-5)
        else:
            pl, lc = out["profile_logits"].astype(np.float64), out["log_counts"].astype(np.float64)
            pl_mean = (pl[0::2] + pl[1::2][:, :, ::-1, ::-1]) / 2  # the RC's strands and positions flipped back
            lc_mean = (lc[0::2] + lc[1::2][:, :, ::-1]) / 2
            for i, g in enumerate(got):
                for s in range(pl.shape[2]):
                    assert float(g[f"log_counts_ref_t0_s{s}"]) == pytest.approx(lc_mean[2 * i, 0, s], abs=3e-5)
                    assert float(g[f"log_counts_alt_t0_s{s}"]) == pytest.approx(lc_mean[2 * i + 1, 0, s], abs=3e-5)
                    pr, pa = softmax(pl_mean[2 * i, 0, s]), softmax(pl_mean[2 * i + 1, 0, s])
                    assert float(g[f"jsd_t0_s{s}"]) == pytest.approx(jsd(pr, pa), rel=1e-3, abs=1e-7)
                    want = jsd(*aligned(pr, pa, rows[i][3], rows[i][4], L))
                    assert float(g[f"jsd_aligned_t0_s{s}"]) == pytest.approx(want, rel=1e-3, abs=1e-7)
                    if len(rows[i][3]) == len(rows[i][4]):  # SNVs: nothing to move
                        assert g[f"jsd_aligned_t0_s{s}"] == g[f"jsd_t0_s{s}"]


def test_a_model_with_controls_reads_them_as_predict_regions_does(models, tmp_path):
    d = tmp_path / "ctl"
    d.mkdir()
    ctl = simulated_runs(d)["profile"]  # shared controls, 2 strands
    # Two control bigWigs: the control-free model's predicted tracks over a few regions (bigWigs need a writer).
    rows = variant_rows(models["seq"])[:2]
    bed = "".join(f"{c}\t{p - 1}\t{p}\tv\t0\t.\t0\t-1\t-1\t0\n" for c, p, *_ in rows)
    (tmp_path / "r.narrowPeak").write_text(bed)
    t = run("predict", "--model", models["profile"], "--regions", tmp_path / "r.narrowPeak", "--genome",
            models["genome"], "--out", tmp_path / "tracks", "--quiet")
    assert t.returncode == 0, t.stderr
    bw = f"{tmp_path / 'tracks' / 'pred_t0_s0.bw'},{tmp_path / 'tracks' / 'pred_t0_s1.bw'}"
    write_vcf(tmp_path / "v.vcf", rows)
    v = run("variants", "--model", ctl, "--vcf", tmp_path / "v.vcf", "--genome", models["genome"], "--controls", bw,
            "--out", tmp_path / "v", "--quiet", "--no-revcomp", "--plot", 0)
    assert v.returncode == 0, v.stderr
    p = run("predict", "--model", ctl, "--regions", tmp_path / "r.narrowPeak", "--genome", models["genome"],
            "--controls", bw, "--out", tmp_path / "p", "--quiet")
    assert p.returncode == 0, p.stderr
    lc = np.load(tmp_path / "p" / "predictions.npz")["log_counts"]
    got = read_tsv(tmp_path / "v" / "variant_scores.tsv")
    for i, g in enumerate(got):  # the REF window is the region window centred on the variant, controls included
        for s in range(2):
            assert float(g[f"log_counts_ref_t0_s{s}"]) == pytest.approx(float(lc[i, 0, s]), abs=3e-5)
    # Without --controls the run's config names none (it trained from arrays): the error says what to give.
    e = run("variants", "--model", ctl, "--vcf", tmp_path / "v.vcf", "--genome", models["genome"], "--out",
            tmp_path / "e")
    assert e.returncode == 1 and "give them with --controls" in e.stderr, e.stderr


def test_regions_keep_the_records_they_overlap_with_the_same_scores_and_numbers(models, tmp_path):
    seq = models["seq"]
    rows = variant_rows(seq)
    write_vcf(tmp_path / "v.vcf", rows)
    base = ["variants", "--model", models["binary"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
            "--quiet", "--threads", 1, "--plot", 0]
    r = run(*base, "--out", tmp_path / "all")
    assert r.returncode == 0, r.stderr
    full = {g["record"]: g for g in read_tsv(tmp_path / "all" / "variant_scores.tsv")}
    # chrA:902 is the deletion's (chrA:900, 4 REF bases) third base; the BED's chrB [449, 450) is chrB:450.
    (tmp_path / "r.bed").write_text("chrB\t449\t450\n")
    r = run(*base, "--out", tmp_path / "sub", "--region", "chrA:902", "--regions", tmp_path / "r.bed")
    assert r.returncode == 0, r.stderr
    assert "2 allele(s) of 5 record(s); 3 record(s) outside the regions" in r.stdout, r.stdout
    got = read_tsv(tmp_path / "sub" / "variant_scores.tsv")
    assert [g["record"] for g in got] == ["2", "3"]
    for g in got:  # the same alleles and scores (float32 round-off of another batch composition)
        f = full[g["record"]]
        assert [g[k] for k in ("chrom", "pos", "id", "ref", "alt")] == [f[k] for k in ("chrom", "pos", "id", "ref", "alt")]
        for k in ("logit_ref", "logit_alt", "logit_diff"):
            assert float(g[k]) == pytest.approx(float(f[k]), abs=2e-6)
    r = run(*base, "--out", tmp_path / "bad", "--region", "A:1-10")
    assert r.returncode != 0
    assert "--region A:1-10: chromosome 'A' is not in" in r.stderr, r.stderr


def test_streamed_chunks_give_the_same_files_and_page(models, tmp_path):
    # The VCF is read a chunk of alleles at a time (hidden --chunk): chunks smaller than a batch, than a record's
    # ALT alleles and than the file give the same TSV and page as one chunk, and the page holds the whole file's top.
    rng = random.Random(11)
    a, rows = models["seq"]["chrA"], []
    for p in sorted(rng.sample(range(150, 1350), 30)):
        alts = [c for c in "ACGT" if c != a[p - 1]]
        rows.append(("chrA", p, f"v{p}", a[p - 1], ",".join(rng.sample(alts, rng.choice([1, 1, 2, 3])))))
    rows.insert(5, ("chrA", 400, "sym", a[399], "<DEL>"))
    write_vcf(tmp_path / "v.vcf", rows)
    for kind, col in (("binary", "logit_diff"), ("profile", "logfc")):
        outs = {}
        for name, extra in (("one", ["--chunk", 100000]), ("c3", ["--chunk", 3]), ("c3b4", ["--chunk", 3, "--batch", 4]),
                            ("b4", ["--batch", 4]), ("c1", ["--chunk", 1, "--batch", 2]), ("b2", ["--batch", 2])):
            r = run("variants", "--model", models[kind], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"],
                    "--out", tmp_path / kind / name, "--quiet", "--threads", 1, "--plot", 5, *extra)
            assert r.returncode == 0, r.stderr
            assert "non-sequence allele(s) skipped" in r.stdout, r.stdout
            outs[name] = [(tmp_path / kind / name / f).read_bytes() for f in ("variant_scores.tsv", "variants.html")]
        assert outs["c3"] == outs["one"] and outs["c3b4"] == outs["b4"] and outs["c1"] == outs["b2"]
        got = read_tsv(tmp_path / kind / "one" / "variant_scores.tsv")
        assert len(got) > 40 and [int(g["record"]) for g in got] == sorted(int(g["record"]) for g in got)
        effect = [max(abs(float(v)) for k, v in g.items() if k.startswith(col)) for g in got]
        order = sorted(range(len(got)), key=lambda i: (-effect[i], i))[:5]
        page = outs["one"][1].decode()
        heads = [page.index(f"<h2>{r + 1}. ") for r in range(5)]
        for r, i in enumerate(order):  # the r-th heading names the r-th largest effect of the whole file
            g = got[i]
            name = f"{g['chrom']}:{g['pos']} {g['ref']}&gt;{g['alt']}"
            assert page.index(name, heads[r]) == heads[r] + len(f"<h2>{r + 1}. "), (r, name)


def test_plot_0_leaves_no_page_of_an_earlier_run(models, tmp_path):
    write_vcf(tmp_path / "v.vcf", variant_rows(models["seq"])[:2])
    common = ["--model", models["binary"], "--vcf", tmp_path / "v.vcf", "--genome", models["genome"], "--out",
              tmp_path / "o", "--quiet", "--threads", 1]
    assert run("variants", *common).returncode == 0
    assert (tmp_path / "o" / "variants.html").exists()
    r = run("variants", *common, "--plot", 0)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["variant_scores.tsv"]
