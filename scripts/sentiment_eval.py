"""Precision/recall of crm.sentiment on the labelled feedback set (tests/data/feedback_labelled.csv).

The rules were written looking at the even rows only ("dev"); the odd rows ("held out") were read
by the classifier, not by its author. `python scripts/sentiment_eval.py [--misses]` prints both.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "feedback_labelled.csv"
sys.path.insert(0, str(ROOT))


def rows() -> list[dict]:
    with DATA.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _int(value: str) -> int | None:
    return int(value) if value.strip() else None


def evaluate(subset: str = "all") -> dict:
    """Counts and precision/recall for negatives on 'all', 'dev' (even rows) or 'held out' (odd rows)."""
    from crm.sentiment import classify

    tp = fp = fn = correct = 0
    misses = []
    chosen = [r for i, r in enumerate(rows()) if subset == "all" or (i % 2 == 0) == (subset == "dev")]
    for row in chosen:
        got, _ = classify(rating=_int(row["rating"]), nps=_int(row["nps"]), text=row["text"])
        want = row["label"]
        correct += got == want
        tp += got == want == "negative"
        fp += got == "negative" != want
        fn += want == "negative" != got
        if got != want:
            misses.append((want, got, row["rating"], row["nps"], row["text"]))
    return {
        "n": len(chosen),
        "negatives": tp + fn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": correct / len(chosen),
        "misses": misses,
    }


if __name__ == "__main__":
    for subset in ("dev", "held out", "all"):
        result = evaluate(subset)
        print(
            f"{subset:9} n={result['n']:3} negatives={result['negatives']:3} precision={result['precision']:.3f} "
            f"recall={result['recall']:.3f} accuracy(3 classes)={result['accuracy']:.3f}"
        )
        if "--misses" in sys.argv and subset == "dev":
            for miss in result["misses"]:
                print("   ", miss)
