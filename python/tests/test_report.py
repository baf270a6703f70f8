# `lowpass report` (tools/cmd_report.cpp): the page's pieces from real run folders — validation metrics per epoch,
# integer epoch ticks and axis titles, the test-metrics table, the spectrum's K marker, labelled logos, rounded
# per-task values, label-count checks. Run: LOWPASS_CLI=build/tools/lowpass python -m pytest python/tests/test_report.py
import json
import re

import pytest

from cli_run import run_cli as run


def _svgs(html):
    return re.findall(r"<svg.*?</svg>", html, re.S)


def _chart(html, title):
    found = [s for s in _svgs(html) if f"font-size='13'>{title}</text>" in s]
    assert len(found) == 1, (title, [re.search(r"font-size='13'>([^<]*)<", s) for s in _svgs(html)])
    return found[0]


def _ticks(svg, axis):
    return re.findall(rf"<text class='{axis}tick'[^>]*>([^<]*)</text>", svg)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Binary runs with and without the prior (3 epochs), a profile run (2 epochs), grad×input of the binary ones."""
    np = pytest.importorskip("numpy")
    d = tmp_path_factory.mktemp("report_runs")
    out = {"dir": d}
    for kind, sim, epochs in [("binary", ["--length", "100", "--motif-bound", "30"], 3),
                              ("profile", ["--type", "profile", "--output-length", "40"], 2)]:
        r = run("simulate", "--out", d / f"{kind}_data", "--n", "48", "--seed", "3", *sim)
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / f"{kind}_data" / "train_config.json").read_text())
        cfg["train"] = {"epochs": epochs, "threads": 1, "batch_size": 16, "progress": False, "early_stopping": False,
                        "seed": 1}  # the same runs every time: a failure can be rerun
        for k in ("train", "valid", "test"):
            cfg["data"][k] = str(d / f"{kind}_data" / f"{k}.npz")
        variants = [("prior", {"type": "fourier", "freq_limit": 12}), ("noprior", {"type": "none"})]
        for name, prior in variants if kind == "binary" else [("profile", None)]:
            c = dict(cfg, prior=prior) if prior else cfg
            (d / f"{name}.json").write_text(json.dumps(c))
            r = run("train", "--config", d / f"{name}.json", "--out", d / name, "--quiet")
            assert r.returncode == 0, r.stderr
            out[name] = d / name
    for name in ("prior", "noprior"):
        r = run("attribute", "--model", d / name, "--npz", d / "binary_data" / "test.npz", "--method", "gradxinput",
                "--out", d / f"attr_{name}", "--threads", "1", "--quiet")
        assert r.returncode == 0, r.stderr
        out[f"attr_{name}"] = d / f"attr_{name}"
    out["np"] = np
    return out


def test_binary_runs_curves_test_table_and_spectrum_marker(runs, tmp_path):
    d = runs["dir"]
    r = run("report", "--out", tmp_path / "rep", "--runs", f"{runs['prior']},{runs['noprior']}",
            "--labels", "with prior,without prior", "--attr",
            f"{runs['attr_prior']}/attr.npz,{runs['attr_noprior']}/attr.npz", "--ohe", f"{runs['attr_prior']}/ohe.npz",
            "--examples", "0,2")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    # validation auROC per epoch, one series per run, with axis titles and integer epoch ticks
    auroc = _chart(html, "validation auROC (mean over tasks)")
    assert "with prior</text>" in auroc and "without prior</text>" in auroc
    assert ">epoch</text>" in auroc and ">valid_auroc</text>" in auroc
    for svg in [auroc, _chart(html, "train_total_loss"), _chart(html, "valid_task_loss")]:
        xt = _ticks(svg, "x")
        assert xt and all(re.fullmatch(r"\d+", t) for t in xt), xt
        assert {"1", "3"} <= set(xt) or {"2"} <= set(xt), xt
        yt = _ticks(svg, "y")
        assert len(yt) >= 2 and all(len(t.partition(".")[2]) <= 4 for t in yt), yt
        steps = {round(float(b) - float(a), 6) for a, b in zip(yt, yt[1:])}
        assert len(steps) == 1, yt  # evenly spaced, round numbers
    # the test-metrics table: one row per run, auROC to 4 decimals
    table = re.search(r"<table class='test'>.*?</table>", html, re.S).group(0)
    for name, lab in [("prior", "with prior"), ("noprior", "without prior")]:
        t = json.loads((runs[name] / "test_metrics.json").read_text())
        row = re.search(rf"<tr><td>{lab}</td>.*?</tr>", table).group(0)
        assert f">{t['test_auroc']:.4f}<" in row, (row, t)
        assert f">{t['best_epoch']}<" in row
    # the spectrum marks the prior's K (config.json freq_limit 12), and its axis says what k is
    spec = _chart(html, re.search(r"font-size='13'>(normalised \|DFT\|[^<]*)<", html).group(1))
    assert "class='marker'" in spec and "K = 12 (prior freq_limit)" in spec
    assert "frequency k (cycles per 100 bp window)" in spec
    # logos: the example index in the heading and title, position ticks
    assert "<h3>Example 2</h3>" in html and "with prior · example 2 · positions 0–99" in html
    assert html.count("font-size='10' font-family='sans-serif' text-anchor='middle'>50</text>") == 4


def test_profile_run_plots_its_validation_metrics(runs, tmp_path):
    r = run("report", "--out", tmp_path / "rep", "--runs", runs["profile"])
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    for title in ["validation profile NLL", "validation profile JSD", "validation log-count Pearson r"]:
        xt = _ticks(_chart(html, title), "x")
        assert xt and all(re.fullmatch(r"\d+", t) for t in xt), xt
    assert "validation auROC" not in html
    nll = _chart(html, "validation profile NLL")  # the flat profile's NLL, dashed, as the baseline
    assert "stroke-dasharray='5,3' points=" in nll and "(flat profile)</text>" in nll
    t = json.loads((runs["profile"] / "test_metrics.json").read_text())
    table = re.search(r"<table class='test'>.*?</table>", html, re.S).group(0)
    assert f">{t['test_nll']:.1f}<" in table and f">{t['test_jsd']:.4f}<" in table
    assert f">{t['test_count_pearson']:.4f}<" in table and "auROC" not in table


def test_empty_metrics_and_no_test_metrics_are_said(runs, tmp_path):
    run_dir = tmp_path / "stopped"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("")
    r = run("report", "--out", tmp_path / "rep", "--runs", f"{run_dir},{runs['prior']}", "--labels", "stopped,ok")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<p class='note'>stopped: no completed epoch" in html
    assert re.search(r"<tr><td>stopped</td><td colspan='\d+'>no test_metrics.json", html)


def test_attr_without_runs_marks_the_default_k_and_regions_label_logos(runs, tmp_path):
    np = runs["np"]
    src = runs["attr_prior"]
    a = tmp_path / "a"
    a.mkdir()
    for f in ("attr.npz", "ohe.npz"):
        (a / f).write_bytes((src / f).read_bytes())
    arr = np.load(a / "attr.npz")
    n, _, L = arr[arr.files[0]].shape
    (a / "regions.bed").write_text("".join(f"chrIV\t{1000 + 10 * i}\t{1000 + 10 * i + L}\trow{i}_line{i + 1}\n"
                                           for i in range(n)))
    r = run("report", "--out", tmp_path / "rep", "--attr", a / "attr.npz", "--ohe", a / "ohe.npz", "--examples", "3")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    k = (150 * L + 500) // 1000
    assert f"K = {k} = round(0.15·L)" in html
    # With only profile runs of another input length, the paper's profile cut-off at L (evaluate's default too).
    r = run("report", "--out", tmp_path / "rep_p", "--runs", runs["profile"], "--attr", a / "attr.npz",
            "--ohe", a / "ohe.npz", "--examples", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads((runs["profile"] / "config.json").read_text())["model"]["input_length"] != L
    assert f"K = {(200 * L + 673) // 1346} = round(200·L/1346)" in (tmp_path / "rep_p" / "index.html").read_text()
    # Without runs, the attribute.json beside the attributions gives the type when it describes their shape.
    info = {"format": "lowpass-attribution", "model_type": "profile", "rows": n, "input_length": L}
    for rows, want in ((n, f"K = {(200 * L + 673) // 1346} = round(200·L/1346)"), (n + 1, f"K = {k} = round(0.15·L)")):
        (a / "attribute.json").write_text(json.dumps(dict(info, rows=rows)))
        r = run("report", "--out", tmp_path / "rep_j", "--attr", a / "attr.npz", "--ohe", a / "ohe.npz")
        assert r.returncode == 0 and want in (tmp_path / "rep_j" / "index.html").read_text(), (rows, r.stderr)
    (a / "attribute.json").unlink()
    assert f"<h3>Example 3 (chrIV:1030-{1030 + L})</h3>" in html and f"example 3 · chrIV:1030-{1030 + L}" in html
    (a / "regions.bed").write_text("chrIV\t0\t10\trow0\n")
    r = run("report", "--out", tmp_path / "rep2", "--attr", a / "attr.npz", "--ohe", a / "ohe.npz")
    assert r.returncode == 1 and "regions.bed has 1 regions" in r.stderr, r.stderr
    assert not (tmp_path / "rep2").exists()


def test_metrics_table_rounds_per_task_values_and_takes_metric_labels(tmp_path):
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"auroc_per_task": [0.6617447769621683, 0.5], "nll": 165.53217, "p": 1.234567e-7,
                             "n": 200}))
    r = run("report", "--out", tmp_path / "rep", "--metrics", f"{m},{m}", "--metric-labels", "first,second")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "[0.6617, 0.5]" in html and "0.66174" not in html
    assert ">165.5<" in html and ">1.23e-07<" in html and ">200<" in html
    assert "<th>first</th><th>second</th>" in html


@pytest.mark.parametrize("args,needle", [
    (["--runs", "a,b", "--labels", "x"], "--labels gives 1 names for 2 --runs"),
    (["--runs", "a", "--labels", "x,y"], "--labels gives 2 names for 1 --runs"),
    (["--attr", "a.npz,b.npz,c.npz", "--ohe", "o.npz", "--labels", "x,y"], "--labels gives 2 names for 3 --attr"),
    (["--runs", "a,b", "--attr", "a.npz", "--ohe", "o.npz", "--labels", "x,y"], "--labels gives 2 names for 1 --attr"),
    (["--metrics", "m.json", "--labels", "x"], "--labels names --runs or --attr"),
    (["--metrics", "m.json,n.json", "--metric-labels", "x"], "--metric-labels gives 1 names for 2 --metrics"),
])
def test_label_count_mismatch_is_a_usage_error(args, needle, tmp_path):
    r = run("report", "--out", tmp_path / "rep", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "(lowpass report --help lists the options)" in lines[0], r.stderr
    assert r.stdout == "" and not (tmp_path / "rep").exists()


def test_observed_and_predicted_profiles(runs, tmp_path):
    d = runs["dir"]
    data = d / "profile_data" / "test.npz"
    r = run("predict", "--model", runs["profile"], "--npz", data, "--out", tmp_path / "pred", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("report", "--out", tmp_path / "rep", "--npz", data, "--predictions", tmp_path / "pred" / "predictions.npz",
            "--prediction-labels", "tiny BPNet", "--examples", "0,1")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<h2>Observed and predicted profiles</h2>" in html
    svg = _chart(html, "example 1")
    assert "observed (+)" in svg and "observed (−)" in svg and "tiny BPNet (−)" in svg
    assert "stroke-dasharray='5,3'" in svg  # the predictions dashed
    # observed in black; the predictions in the first run colour (not the colours of runs 1 and 2 per strand); the
    # − strand below 0
    assert "stroke='#000000'" in svg and "stroke='#0072B2' stroke-dasharray='5,3'" in svg
    assert "stroke='#D55E00'" not in svg and "counts per base (− strand below 0)" in svg
    assert any(float(t) < 0 for t in _ticks(svg, "y"))
    assert _ticks(svg, "x")[0] == "0"  # output positions from 0
    # predictions of another model's shape are refused, naming both files
    r = run("predict", "--model", runs["prior"], "--npz", d / "binary_data" / "test.npz", "--out", tmp_path / "bp",
            "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("report", "--out", tmp_path / "rep2", "--npz", data, "--predictions", tmp_path / "bp" / "predictions.npz")
    assert r.returncode == 1 and "no array 'profile_logits'" in r.stderr, r.stderr
    r = run("report", "--out", tmp_path / "rep3", "--predictions", tmp_path / "pred" / "predictions.npz")
    assert r.returncode == 2 and "--npz" in r.stderr, r.stderr


def test_long_logos_get_a_zoom_and_charts_fit_their_titles(tmp_path):
    """A 1,000 bp attribution: the overview stays about 900 px wide, a 60 bp zoom on the largest attribution follows
    each set's logo (the same window for both sets, shaded in the overview), every logo has a score scale; a run of
    one epoch shows its flat-profile baseline as an open circle; the spectrum chart is as wide as its title; the same
    inputs give the same bytes."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    n, L = 3, 1000
    ohe = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, L))].transpose(0, 2, 1).copy()
    attr = rng.normal(0, 0.05, (n, 4, L)).astype(np.float32)
    attr[:, :, 700:712] = 2.0  # a motif-like block of large scores
    np.savez(tmp_path / "ohe.npz", ohe)
    np.savez(tmp_path / "a.npz", attr)
    np.savez(tmp_path / "b.npz", -attr)
    run_dir = tmp_path / "one"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "valid_nll": 150.0, "valid_uniform_nll": 180.0,
                                                       "train_total_loss": 3.0}) + "\n")
    args = ["--runs", run_dir, "--labels", "a,b", "--attr", f"{tmp_path / 'a.npz'},{tmp_path / 'b.npz'}",
            "--ohe", tmp_path / "ohe.npz", "--examples", "1"]
    r = run("report", "--out", tmp_path / "rep", *args)
    assert r.returncode == 2, r.stderr  # --labels names 1 run but 2 attribution sets
    args[1:4] = [f"{run_dir},{run_dir}", "--labels", "a,b"]
    r = run("report", "--out", tmp_path / "rep", *args)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    logos = [s for s in _svgs(html) if "max |score|" in s]
    assert len(logos) == 4  # per set: the overview and the zoom
    for s in logos:
        assert float(re.match(r"<svg[^>]* width='([\d.]+)'", s).group(1)) <= 1000
        assert "<text class='ytick'" in s and ">0</text>" in s  # the score scale
    zooms = re.findall(r"zoom: positions (\d+)–(\d+) \(largest attribution\)", html)
    assert len(zooms) == 2 and zooms[0] == zooms[1], zooms  # one window for both sets
    z0, z1 = map(int, zooms[0])
    assert z1 - z0 == 59 and z0 <= 700 and z1 >= 711, zooms  # around the block of large scores
    assert sum("class='mark'" in s for s in logos) == 2  # the zoomed window shaded in each overview
    nll = _chart(html, "validation profile NLL")
    assert "fill='white' stroke=" in nll  # the one-epoch baseline, which no line draws
    spec = _chart(html, re.search(r"font-size='13'>(normalised \|DFT\|[^<]*)<", html).group(1))
    title = re.search(r"font-size='13'>([^<]*)<", spec).group(1)
    assert float(re.match(r"<svg[^>]* width='([\d.]+)'", spec).group(1)) >= 68 + 6.5 * len(title)
    r = run("report", "--out", tmp_path / "rep2", *args)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep2" / "index.html").read_bytes() == (tmp_path / "rep" / "index.html").read_bytes()
