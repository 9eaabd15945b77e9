"""The benchmark's feature-quality figures come from a real scoring run."""

from bench.truth_score import score_truth_run


def test_truth_run_scores_every_signal_at_the_target() -> None:
    score = score_truth_run()
    assert {k: v["labels"] for k, v in score.items()} == {"steam": 20, "rlm": 5, "sharp": 4}
    for kind, sc in score.items():
        assert sc["precision"] >= 0.95 and sc["recall"] >= 0.95, (kind, sc)
