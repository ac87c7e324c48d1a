"""Validate the corrected shares on real statements held out by source page.

    .venv/bin/python benchmarks/shares.py [--draws 200] [--quotes 200] [--human 50] [--folds 5]

The labelled real statements are split into ``--folds`` folds by source page. For each fold
the default coder is trained on the other folds (its measured error rates come from that
training, out of fold), and the held-out fold is coded. Then, ``--draws`` times per fold, a
held-out set of about ``--quotes`` statements is drawn page by page, ``--human`` of them are
treated as the random human-coded sample, and every code's share is estimated by raw
counting (Wilson interval), the adjusted estimate (no human sample), the prediction-powered
estimate, and the human sample alone (Wilson interval), against the people's share on the
whole drawn set. Printed per code: mean absolute error and coverage of the 95% intervals,
and the width of the prediction-powered interval over the human-only one.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from pipeline.classify import group_folds
from pipeline.codebook import load_codebook
from pipeline.embed import load_encoder
from pipeline.labels import LabelledSet, load_labels
from pipeline.marks import wilson_interval
from pipeline.model import HOLDOUT_ORIGINS, train_coder
from pipeline.shares import CoderErrors, ShareEstimator

SEED = 20261202


def held_out_codes(labels: LabelledSet, codebook, encoder, folds: int):
    """Per fold: (test indices, model codes on them, the training fold's measured errors)."""
    real = [i for i, q in enumerate(labels.quotes) if q.origin in HOLDOUT_ORIGINS]
    written = [q for q in labels.quotes if q.origin not in HOLDOUT_ORIGINS]
    groups = [labels.quotes[i].group for i in real]
    out = []
    for k, (train, test) in enumerate(group_folds(groups, folds, len(real))):
        started = time.perf_counter()
        train_set = replace(labels, quotes=tuple(labels.quotes[real[i]] for i in train) + tuple(written))
        coder = train_coder(codebook, train_set, encoder)
        texts = [labels.quotes[real[i]].text for i in test]
        codes = coder.decide(coder.predict_proba(texts), texts).astype(bool)
        h = coder.holdout
        errors = CoderErrors(coder.model_id, codebook.code_ids, h["holdout_proba"] >= coder.thresholds,
                             h["holdout_labels"].astype(bool), h["holdout_groups"])
        out.append((np.array([real[i] for i in test]), codes, errors))
        print(f"fold {k + 1}: trained on {len(train)} real statements, coded {len(test)} held out "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return out


def draw_set(pages: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of whole pages, in random order, until at least ``size`` statements."""
    chosen, total = [], 0
    for page in rng.permutation(np.unique(pages)):
        members = np.flatnonzero(pages == page)
        chosen.append(members)
        total += len(members)
        if total >= size:
            break
    return np.concatenate(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="draws per fold")
    parser.add_argument("--quotes", type=int, default=200)
    parser.add_argument("--human", type=int, default=50)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", help="also write the figures as JSON")
    args = parser.parse_args()
    codebook = load_codebook()
    labels = load_labels(codebook)
    Y = labels.matrix(codebook.code_ids).astype(bool)
    page_of = np.unique(np.array(labels.groups, dtype=object).astype(str), return_inverse=True)[1]
    k = len(codebook.code_ids)
    rng = np.random.default_rng(SEED)
    records = {m: {"err": [], "cover": []} for m in ("raw", "adjusted", "ppi", "human_only")}
    width_ratio = []
    for test, codes, errors in held_out_codes(labels, codebook, load_encoder(), args.folds):
        adjusted = ShareEstimator(errors=errors, level="code").fit(codebook)
        ppi = ShareEstimator(errors=errors, human_sample=True, level="code").fit(codebook)
        for _ in range(args.draws):
            pick = draw_set(page_of[test], args.quotes, rng)
            truth, model = Y[test[pick]], codes[pick]
            target = truth.mean(0)
            human = np.zeros(len(pick), dtype=bool)
            human[rng.choice(len(pick), size=min(args.human, len(pick)), replace=False)] = True
            final = np.where(human[:, None], truth, model)
            raw_low, raw_high = wilson_interval(model.sum(0), np.full(k, len(pick)))
            estimates = {
                "raw": (model.mean(0), raw_low, raw_high),
                "adjusted": adjusted.estimate(model, model, np.zeros(len(pick), bool), rng),
                "ppi": ppi.estimate(final, model, human),
                "human_only": (truth[human].mean(0), *wilson_interval(truth[human].sum(0), np.full(k, human.sum()))),
            }
            for method, e in estimates.items():
                share, low, high = (e.share, e.ci_low, e.ci_high) if hasattr(e, "share") else e
                records[method]["err"].append(np.abs(share - target))
                records[method]["cover"].append((low <= target + 1e-9) & (target - 1e-9 <= high))
            ppi_width = estimates["ppi"].ci_high - estimates["ppi"].ci_low
            human_width = estimates["human_only"][2] - estimates["human_only"][1]
            width_ratio.append(ppi_width / human_width)
    summary = {m: {"mae": np.mean(r["err"], 0), "coverage": np.mean(r["cover"], 0)} for m, r in records.items()}
    ratio = np.nanmean(width_ratio, 0)
    n_draws = len(width_ratio)
    print(f"\n{n_draws} held-out draws of about {args.quotes} real statements ({args.human} of them the human sample), "
          f"{args.folds} folds by source page")
    header = f"{'code':<22}{'people':>7} | {'MAE raw':>8}{'adj':>7}{'ppi':>7} | {'cover raw':>9}{'adj':>6}{'ppi':>6}{'hum':>6} | {'ppi/hum width':>13}"
    print(header)
    print("-" * len(header))
    for j, code in enumerate(codebook.code_ids):
        s = {m: (summary[m]["mae"][j], summary[m]["coverage"][j]) for m in summary}
        print(f"{code:<22}{Y[:, j].mean():>7.3f} | {s['raw'][0]:>8.3f}{s['adjusted'][0]:>7.3f}{s['ppi'][0]:>7.3f} | "
              f"{s['raw'][1]:>9.2f}{s['adjusted'][1]:>6.2f}{s['ppi'][1]:>6.2f}{s['human_only'][1]:>6.2f} | {ratio[j]:>13.2f}")
    mean = {m: (summary[m]["mae"].mean(), summary[m]["coverage"].mean()) for m in summary}
    print(f"{'mean over codes':<22}{'':>7} | {mean['raw'][0]:>8.3f}{mean['adjusted'][0]:>7.3f}{mean['ppi'][0]:>7.3f} | "
          f"{mean['raw'][1]:>9.2f}{mean['adjusted'][1]:>6.2f}{mean['ppi'][1]:>6.2f}{mean['human_only'][1]:>6.2f} | "
          f"{np.nanmean(ratio):>13.2f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"draws": n_draws, "codes": list(codebook.code_ids),
                       **{f"{m}_{stat}": summary[m][stat].round(4).tolist() for m in summary for stat in ("mae", "coverage")},
                       "ppi_over_human_width": ratio.round(3).tolist()}, handle, indent=1)


if __name__ == "__main__":
    main()
