import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.cli import tuner, tuner_subprocess
from tests.fake_experiment import K, ablation_spec, write_baselines, write_per_user, write_trial
from tuner.analysis.report import write_report
from tuner.errors import NoResultsError
from tuner.experiment.read import Experiment
from tuner.recsys.hyperparameters import Hyperparameters

# test recall@10 of each (weight decay, seed) at the best-validation epoch (epoch 2 has the better val recall)
RECALL = {(0.0, 0): 0.30, (0.0, 1): 0.34, (0.1, 0): 0.20, (0.1, 1): 0.21}
PRECISION = {(0.0, 0): 0.12, (0.0, 1): 0.14, (0.1, 0): 0.09, (0.1, 1): 0.10}


@pytest.fixture
def experiment(tmp_path):
    directory = str(tmp_path / "runs" / "abl")
    os.makedirs(directory)
    ablation_spec(directory)
    for (decay, seed), recall in RECALL.items():
        hp = Hyperparameters(weight_decay=decay, seed=seed, k=[K], epochs=2, eval_every=1)
        trial_id = f"t{decay}-{seed}"
        epoch1 = {f"val/recall@{K}": 0.01, f"test/recall@{K}": 0.99}  # the worse validation epoch: never reported
        epoch2 = {f"val/recall@{K}": recall / 2, f"test/recall@{K}": recall, f"test/precision@{K}": PRECISION[(decay, seed)]}
        write_trial(directory, trial_id, hp, [epoch1, epoch2])
        write_per_user(directory, trial_id, np.linspace(0, recall, 20))
    write_baselines(directory, {f"test/precision@{K}": 0.095, f"test/recall@{K}": 0.15})
    return directory


def _table(out):
    return pd.read_csv(Path(out) / "tables" / "ablation_weight_decay.csv", keep_default_na=False)


def test_ablation_table_matches_hand_computed_values(experiment):
    out = write_report(Experiment.open(experiment))
    table = _table(out).set_index("row")
    recall = table[f"test/recall@{K}"]
    assert recall["weight_decay=0 (best)"] == f"{0.32:.4f} ± {np.std([0.30, 0.34], ddof=1):.4f}"
    assert recall["weight_decay=0.1"] == f"{0.205:.4f} ± {np.std([0.20, 0.21], ddof=1):.4f}"
    assert table.loc["mostpop", f"test/precision@{K}"] == "0.0950"
    assert table.loc["weight_decay=0.1", "seeds"] == 2
    expected_p = stats.ttest_rel([0.20, 0.21], [0.30, 0.34]).pvalue
    assert table.loc["weight_decay=0.1", "p (seeds, vs best)"] == f"{expected_p:.3g}"
    users_p = stats.wilcoxon(np.r_[np.linspace(0, 0.30, 20), np.linspace(0, 0.34, 20)],
                             np.r_[np.linspace(0, 0.20, 20), np.linspace(0, 0.21, 20)]).pvalue
    assert table.loc["weight_decay=0.1", "p (users, vs best)"] == f"{users_p:.3g}"
    assert table.loc["weight_decay=0 (best)", "flag"] == ""


def test_degenerate_rows_are_flagged(tmp_path):
    directory = str(tmp_path / "runs" / "deg")
    os.makedirs(directory)
    ablation_spec(directory, values=(0.0, 0.01, 1.0), seeds=(0,))
    same = {f"val/recall@{K}": 0.1, f"test/precision@{K}": 0.0890, f"test/recall@{K}": 0.00756}
    for decay in (0.01, 1.0):  # two values with identical metrics, below MostPop
        write_trial(directory, f"t{decay}", Hyperparameters(weight_decay=decay, k=[K]), [same])
    write_trial(directory, "t0", Hyperparameters(weight_decay=0.0, k=[K]),
                [{f"val/recall@{K}": 0.3, f"test/precision@{K}": 0.2, f"test/recall@{K}": 0.1}])
    write_baselines(directory, {f"test/precision@{K}": 0.0895})
    table = _table(write_report(Experiment.open(directory))).set_index("row")
    assert table.loc["weight_decay=0 (best)", "flag"] == ""
    for value, other in (("0.01", "1"), ("1", "0.01")):
        flag = table.loc[f"weight_decay={value}", "flag"]
        assert "not better than MostPop" in flag and f"same test precision/recall@{K} as weight_decay={other}" in flag
    assert table.loc["weight_decay=0.01", "p (seeds, vs best)"] == "n/a"  # one seed: no paired test


def test_rows_identical_in_every_seed_are_flagged(experiment):
    same = {f"val/recall@{K}": 0.05, f"test/precision@{K}": 0.05, f"test/recall@{K}": 0.02}
    for seed in (0, 1):
        write_trial(experiment, f"t0.1-{seed}", Hyperparameters(weight_decay=0.1, seed=seed, k=[K]), [same, same])
    table = _table(write_report(Experiment.open(experiment))).set_index("row")
    assert "identical test precision/recall in every seed" in table.loc["weight_decay=0.1", "flag"]
    assert "identical" not in table.loc["weight_decay=0 (best)", "flag"]


def test_all_trials_failed(tmp_path):
    directory = str(tmp_path / "runs" / "failed")
    os.makedirs(directory)
    ablation_spec(directory)
    write_trial(directory, "t1", Hyperparameters(k=[K]), [None], stop_reason="failed")
    write_trial(directory, "t2", Hyperparameters(k=[K]), [None], stop_reason="diverged")
    with pytest.raises(NoResultsError, match="no trial of failed produced results"):
        write_report(Experiment.open(directory))
    report = (Path(directory) / "report" / "report.md").read_text()
    assert "No trial produced results" in report and "1 failed, 1 diverged" in report
    assert not list((Path(directory) / "report" / "plots").glob("*.png"))


def test_truncated_record_file_is_skipped(experiment):
    path = Path(experiment) / "records" / "t0.1-1" / "epoch=1.parquet"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match="skipped"):
        out = write_report(Experiment.open(experiment))
    assert "weight_decay=0.1" in _table(out)["row"].tolist()


def test_report_is_deterministic(experiment, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(experiment, copy)  # also: a copied folder is enough
    first = write_report(Experiment.open(str(copy)), str(tmp_path / "a"))
    second = write_report(Experiment.open(str(copy)), str(tmp_path / "b"))
    for name in ["report.md", *[f"tables/{p.name}" for p in (first / "tables").iterdir()]]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_report_command_exit_codes(experiment, tmp_path):
    ok = tuner_subprocess("report", experiment)
    assert ok.returncode == 0, ok.stderr
    missing = tuner("report", "nope", "--storage", tmp_path)
    assert missing.returncode == 2 and "not a tuner experiment" in missing.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_report_renders_in_headless_chromium(experiment):
    if CHROMIUM is None:
        if os.environ.get("TUNER_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed, and TUNER_REQUIRE_BROWSER is set")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    out = write_report(Experiment.open(experiment))
    artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        page_width = page.evaluate("document.scrollingElement.scrollWidth")
        page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        browser.close()
    assert len(images) == 2 and all(complete and width > 0 for complete, width in images)
    assert errors == []
    assert page_width <= 1280  # a wide table scrolls inside its own box; the page itself never scrolls sideways


def test_a_damaged_provenance_file_is_one_line(tmp_path):
    from tuner.errors import DataError
    from tuner.experiment import provenance

    (tmp_path / "provenance.json").write_text('{"command": "tuner run')
    with pytest.raises(DataError, match=r"provenance.json: is damaged .*remove it and run the command again$"):
        provenance.load(str(tmp_path))


def test_records_that_cannot_be_read_are_named_in_the_report(experiment):
    extra = Hyperparameters(weight_decay=0.1, seed=0, k=[K], epochs=2, eval_every=1)
    write_trial(experiment, "lost", extra, [{f"val/recall@{K}": 0.1}])
    damaged = Path(experiment) / "records" / "lost" / "epoch=1.parquet"
    damaged.write_bytes(damaged.read_bytes()[:40])
    with pytest.warns(UserWarning, match="skipped, not a readable parquet file"):
        out = write_report(Experiment.open(experiment))
    assert "**Records that could not be read**" in (Path(out) / "report.md").read_text()
    assert str(damaged) in (Path(out) / "report.md").read_text()


def test_report_files_follow_the_umask(experiment):
    previous = os.umask(0o027)
    try:
        out = write_report(Experiment.open(experiment))
    finally:
        os.umask(previous)
    files = [p for p in Path(out).rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".md", ".html", ".csv", ".png"}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}


def _tuning_experiment(tmp_path, mostpop_val_recall=0.05):
    """Two trials (val recall 0.01 and 0.02) and a MostPop baseline."""
    from tuner.experiment.layout import save_spec
    from tuner.spec import validate_spec

    directory = tmp_path / "runs" / "tune"
    spec = validate_spec({"name": "tune", "model": "lightgcn", "dataset": {"name": "synthetic"},
                          "metric": f"val/recall@{K}", "fixed": {"k": [K], "epochs": 2, "eval_every": 1},
                          "params": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
                          "baselines": ["mostpop"], "storage": str(tmp_path / "runs")}, "test")
    save_spec(str(directory), spec)
    for trial_id, lr in (("a", 0.01), ("b", 0.02)):
        write_trial(str(directory), trial_id, Hyperparameters(lr=lr, k=[K]), [{f"val/recall@{K}": lr}] * 2)
    write_baselines(str(directory), {f"test/precision@{K}": 0.0731, f"val/recall@{K}": mostpop_val_recall})
    return directory


def test_a_tuning_report_warns_up_front_when_no_trial_beats_a_baseline(tmp_path):
    """A rank-8 MF beat every tuned trial and the report said nothing: now its first section says so, and each
    trial's row names the baselines it does not beat."""
    out = write_report(Experiment.open(str(_tuning_experiment(tmp_path, mostpop_val_recall=0.05))))
    report = (out / "report.md").read_text()
    warning = (f"**Warning: no trial beats the baseline(s) mostpop (0.0500) on val/recall@{K} (the best trial has "
               "0.0200): the tuned model has learnt nothing they do not already know")
    assert warning in report and report.index(warning) < report.index("## Tuning")
    assert pd.read_csv(out / "tables" / "best_trials.csv")["flag"].tolist() == ["below mostpop"] * 2

    out = write_report(Experiment.open(str(_tuning_experiment(tmp_path, mostpop_val_recall=0.015))))
    report = (out / "report.md").read_text()
    assert "Warning: no trial beats" not in report
    assert pd.read_csv(out / "tables" / "best_trials.csv")["flag"].fillna("").tolist() == ["", "below mostpop"]


def test_a_tuning_report_shows_the_baselines(tmp_path):
    out = write_report(Experiment.open(str(_tuning_experiment(tmp_path))))
    report = (out / "report.md").read_text()
    # each table comes after the text that explains it, and before the next one's text
    places = [report.index(text) for text in (
        "Best trials:", "(CSV: `tables/best_trials.csv`)", "Baselines on the same split", "(CSV: `tables/baselines.csv`)",
        "Quality against cost:", "(CSV: `tables/pareto.csv`)")]
    assert places == sorted(places)
    assert pd.read_csv(out / "tables" / "baselines.csv")[f"test/precision@{K}"].tolist() == [0.0731]
    # quality against cost: both trials ran 2 s (write_trial: one second per epoch); b is better, a no cheaper
    pareto = pd.read_csv(out / "tables" / "pareto.csv")
    assert pareto["trial"].tolist() == ["b"] and pareto["seconds"].tolist() == [2.0]  # "2.00" in the CSV
    assert pd.read_csv(out / "tables" / "best_trials.csv")["seconds"].tolist() == [2.0, 2.0]
    assert (out / "plots" / "pareto.png").is_file()


def test_trials_that_ran_other_code_are_shown(experiment):
    from tuner.experiment import provenance

    provenance.record(experiment, {"cpu": 1.0, "gpu": 0.0})
    provenance.record_trial(experiment, "t0.0-0", 1, device="cpu", split_hash="abc", seed=0)
    out = write_report(Experiment.open(experiment))
    assert "All 1 trial starts (`manifests/`) ran this code and these packages." in (out / "report.md").read_text()
    manifest = Path(experiment) / "manifests" / "trial_id=t0.0-0.attempt=2.json"
    manifest.write_text(json.dumps({**json.loads(manifest.with_name("trial_id=t0.0-0.attempt=1.json").read_text()),
                                    "attempt": 2, "git_revision": "0123abc"}))
    report = (write_report(Experiment.open(experiment)) / "report.md").read_text()
    assert "**The trials did not all run the code and packages above**: 2 combination(s) over 2 trial starts" in report
    assert "tuner 0123abc" in report


def test_an_ablation_keeps_a_collapsed_value_with_its_row_and_flag(tmp_path):
    """The seed study's finding is that weight decay 0.1 kills the model: its row stays, flagged, not dropped."""
    directory = str(tmp_path / "runs" / "wd")
    ablation_spec(directory, values=(0.0, 0.1), seeds=(0,))
    write_trial(directory, "healthy", Hyperparameters(weight_decay=0.0, k=[K]), [{f"val/recall@{K}": 0.3}] * 2)
    write_trial(directory, "dead", Hyperparameters(weight_decay=0.1, k=[K]), [{f"val/recall@{K}": 0.01}] * 2,
                stop_reason="collapsed")
    write_baselines(directory, {})
    out = write_report(Experiment.open(directory))
    table = pd.read_csv(out / "tables" / "ablation_weight_decay.csv", keep_default_na=False)  # "" stays ""
    flags = dict(zip(table["row"], table["flag"]))
    assert "training collapsed (BPR loss at ln 2" in flags["weight_decay=0.1"]
    assert "collapsed" not in flags["weight_decay=0 (best)"]
    assert "1 collapsed" in (out / "report.md").read_text()


def test_importances_use_every_trial_at_a_common_epoch_and_say_when_too_few_trials_rank_anything(tmp_path):
    """2 of 8 trials finished (ASHA stopped the rest at epoch 2): fANOVA on 2 points ranked noise, and the contour
    interpolated a surface from them. Now the 8 trials are compared at epoch 2, and the report says what 8 is worth."""
    from tuner.experiment.layout import save_spec
    from tuner.spec import validate_spec

    directory = tmp_path / "runs" / "asha"
    spec = validate_spec({"name": "asha", "model": "lightgcn", "dataset": {"name": "synthetic"},
                          "metric": f"val/recall@{K}", "fixed": {"k": [K], "epochs": 4, "eval_every": 1},
                          "params": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
                                     "num_layers": {"type": "int", "low": 1, "high": 4}},
                          "storage": str(tmp_path / "runs")}, "test")
    save_spec(str(directory), spec)
    rng = np.random.default_rng(0)
    for index in range(8):
        lr, layers = float(10 ** rng.uniform(-3, -1)), int(rng.integers(1, 5))
        epochs = 4 if index < 2 else 2
        write_trial(str(directory), f"t{index}", Hyperparameters(lr=lr, num_layers=layers, k=[K]),
                    [{f"val/recall@{K}": lr * 10 + 0.01 * e} for e in range(epochs)],
                    stop_reason="finished" if index < 2 else "early_stopped")
    out = write_report(Experiment.open(str(directory)))
    report = (out / "report.md").read_text()
    assert f"Optuna's fANOVA on the best `val/recall@{K}` up to epoch 2 of the 8 trials that reached it" in report
    assert "**With 8 trials this ranking means little**" in report
    assert "Only 2 trial(s) finished" in report and "the contour of two parameters needs more trials" in report
    assert not (out / "plots" / "contour.png").exists() and not (out / "plots" / "importances.png").exists()
    assert set(pd.read_csv(out / "tables" / "importances.csv")["parameter"]) == {"lr", "num_layers"}
