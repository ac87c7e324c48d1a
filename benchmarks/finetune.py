"""Does contrastive fine-tuning of the encoder win on real statements held out by page?

    .venv/bin/pip install -c constraints.txt -e '.[finetune]'   # datasets and accelerate
    .venv/bin/python benchmarks/finetune.py [--pairs-per-code 64] [--epochs 1] [--minutes 6]

On each of the five folds of ``framecode evaluate`` (grouped by source page), the packaged
all-MiniLM-L6-v2 is fine-tuned with sentence-transformers' trainer on pairs of that fold's
real training statements (cosine-similarity loss: same-code pairs toward 1, code against
no-code pairs toward 0), every labelled text and sentence is re-embedded with it, and the
default coder is trained and scored exactly as in the evaluation. The baseline is the same
coder on the unchanged model's torch embeddings, so the two differ only in the encoder.
``--minutes`` stops a fold's training early (the output says when it did). Prints per fold
and overall macro-F1 and each code's F1 and Krippendorff's alpha, with the time spent.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import tempfile
import time

import numpy as np

from pipeline.classify import group_folds
from pipeline.codebook import load_codebook
from pipeline.embed import Encoder, EncoderIdentity, load_encoder
from pipeline.evaluate import REAL_ORIGINS, EvalData, _concat, fit_and_score, macro_f1, per_code_metrics, prepare, supervised_system
from pipeline.features import FeatureSpec
from pipeline.labels import load_labels

SEED = 0


def training_pairs(texts: list[str], Y: np.ndarray, per_code: int, seed: int = SEED) -> dict[str, list]:
    """For each code, ``per_code`` same-code pairs (score 1) and as many code/no-code pairs (score 0)."""
    rng = random.Random(seed)
    first, second, score = [], [], []
    for k in range(Y.shape[1]):
        positives, negatives = np.flatnonzero(Y[:, k]).tolist(), np.flatnonzero(Y[:, k] == 0).tolist()
        if len(positives) < 2 or not negatives:
            continue
        for _ in range(per_code):
            a, b = rng.sample(positives, 2)
            first.append(texts[a]), second.append(texts[b]), score.append(1.0)
            first.append(texts[rng.choice(positives)]), second.append(texts[rng.choice(negatives)]), score.append(0.0)
    order = list(range(len(score)))
    rng.shuffle(order)
    return {"sentence1": [first[i] for i in order], "sentence2": [second[i] for i in order],
            "score": [score[i] for i in order]}


def fine_tune(base, pairs: dict[str, list], epochs: int, minutes: float) -> tuple[object, float, bool]:
    """A fine-tuned copy of the SentenceTransformer ``base``, the seconds it took, and whether
    the time box stopped it."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from transformers import TrainerCallback

    torch.manual_seed(SEED)
    model = copy.deepcopy(base)
    full_length, model.max_seq_length = model.max_seq_length, 128  # training only; embedding uses the full length
    model.model_card_data.generate_widget_examples = False
    started = time.perf_counter()
    stopped = [False]

    class TimeBox(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - started > 60 * minutes:
                stopped[0] = control.should_training_stop = True

    with tempfile.TemporaryDirectory() as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=16, learning_rate=2e-5,
            warmup_ratio=0.1, seed=SEED, save_strategy="no", report_to=[], use_cpu=True, logging_strategy="no",
            disable_tqdm=True,
        )
        SentenceTransformerTrainer(model=model, args=arguments, train_dataset=Dataset.from_dict(pairs),
                                   loss=CosineSimilarityLoss(model), callbacks=[TimeBox()]).train()
    model.max_seq_length = full_length
    model.eval()
    return model, time.perf_counter() - started, stopped[0]


def uncached(model, base: Encoder, fold: int) -> Encoder:
    """``model`` behind the same text normalisation and batching as ``base``, without the
    embedding cache (its vectors are not the packaged model's)."""
    identity = EncoderIdentity(f"{base.identity.name} fine-tuned on fold {fold}", "none", "torch", base.dimension)
    return Encoder(model, identity, cache=None, batch_size=base.batch_size)


def real_and_written(data: EvalData) -> tuple[EvalData, EvalData]:
    return data.subset(np.isin(data.origins, REAL_ORIGINS)), data.subset(data.origins == "written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-per-code", type=int, default=64, help="same-code pairs per code (and as many code/no-code pairs)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the pairs")
    parser.add_argument("--minutes", type=float, default=6.0, help="time box for one fold's training")
    args = parser.parse_args()
    try:
        import accelerate  # noqa: F401 - the trainer needs both
        import datasets  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/finetune.py needs datasets and accelerate: "
                 "run .venv/bin/pip install -c constraints.txt -e '.[finetune]'")
    codebook = load_codebook()
    labels = load_labels(codebook)
    spec = FeatureSpec.from_cue_file()
    encoder = load_encoder(backend="torch")  # the verified packaged model; its embeddings are cached
    system = supervised_system(tfidf_weight=spec.tfidf_weight)

    clock = time.perf_counter()
    base_real, base_written = real_and_written(prepare(labels, codebook, encoder, spec))
    print(f"baseline embeddings: {len(labels)} labelled quotes in {time.perf_counter() - clock:.0f} s", flush=True)
    folds = group_folds(base_real.groups, 5, len(base_real.texts))
    Y = base_real.Y
    decided = {"unchanged encoder": np.zeros(Y.shape, dtype=np.int8), "fine-tuned encoder": np.zeros(Y.shape, dtype=np.int8)}
    proba = {name: np.zeros(Y.shape) for name in decided}

    def score(name: str, real: EvalData, written: EvalData, train_idx, test_idx) -> float:
        mask = np.zeros(len(real.texts), dtype=bool)
        mask[train_idx] = True
        proba[name][test_idx], decided[name][test_idx] = fit_and_score(system, _concat(real.subset(mask), written), real.subset(~mask))
        return macro_f1(Y[test_idx], decided[name][test_idx])

    for fold, (train_idx, test_idx) in enumerate(folds):
        base = score("unchanged encoder", base_real, base_written, train_idx, test_idx)
        pairs = training_pairs([base_real.texts[i] for i in train_idx], Y[train_idx], args.pairs_per_code, SEED + fold)
        model, seconds, stopped = fine_tune(encoder.model, pairs, args.epochs, args.minutes)
        clock = time.perf_counter()
        tuned_real, tuned_written = real_and_written(prepare(labels, codebook, uncached(model, encoder, fold), spec))
        tuned = score("fine-tuned encoder", tuned_real, tuned_written, train_idx, test_idx)
        print(f"fold {fold}: macro-F1 {base:.3f} -> {tuned:.3f}; fine-tuning {seconds:.0f} s on {len(pairs['score'])} pairs"
              f"{' (stopped by the time box)' if stopped else ''}, re-embedding {time.perf_counter() - clock:.0f} s", flush=True)

    print(f"\n{'encoder':<20} {'macro-F1':>8}  " + "  ".join(f"{code[:12]:>12}" for code in codebook.code_ids))
    for name in decided:
        rows = per_code_metrics(Y, decided[name], proba[name], codebook.code_ids)
        print(f"{name:<20} {macro_f1(Y, decided[name]):>8.3f}  " + "  ".join(f"{r['f1']:.2f}/{r['krippendorff_alpha']:.2f}".rjust(12) for r in rows))
    print("(per code: F1/Krippendorff's alpha against the adjudicated labels)")


if __name__ == "__main__":
    main()
