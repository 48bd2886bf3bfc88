"""DVC experiments (`dvc exp show --json`) gathered into one table: BLEU per variant as
mean ± std over the runs that differ only in their seed (issue: the 3-seed table)."""

from __future__ import annotations

import statistics

# Settings that change how a run is computed, or its seed, but not what is being compared.
NOT_A_SETTING = {"train.seed", "train.processes", "train.device", "decode.device"}


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


def _runs(entries: list[dict], headline: str) -> list[dict]:
    out = []
    for entry in entries:
        for row in [entry] + [e["revs"][0] for e in entry.get("experiments") or []]:
            data = row.get("data") or {}
            bleu = {path.rsplit("/", 1)[-1].removesuffix(".json"): (metric.get("data") or {}).get("bleu")
                    for path, metric in (data.get("metrics") or {}).items() if path.startswith(headline + "/")}
            bleu = {v: b for v, b in bleu.items() if b is not None}
            if row["rev"] == "workspace" or row.get("error") or not bleu:
                continue  # the workspace repeats a commit or an applied experiment
            params = flatten((data.get("params") or {}).get("params.yaml", {}).get("data", {}))
            out.append({"name": row.get("name") or row["rev"][:7], "rev": row["rev"], "params": params, "bleu": bleu})
    return out


def collect(exp_show: list[dict], headline: str = "results/headline") -> dict:
    """Every finished run with its BLEU per variant (the evaluate stage's headline metrics), and groups of
    runs equal in all settings but the seed."""
    runs = _runs(exp_show, headline)
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = tuple(sorted((k, repr(v)) for k, v in run["params"].items() if k not in NOT_A_SETTING))
        groups.setdefault(key, []).append(run)
    varying = {k for run in runs for k in run["params"] if k not in NOT_A_SETTING
               and len({repr(r["params"].get(k)) for r in runs}) > 1}
    summary = []
    for members in groups.values():
        variants = sorted({v for run in members for v in run["bleu"]})
        bleu = {}
        for v in variants:
            scores = [run["bleu"][v] for run in members if v in run["bleu"]]
            bleu[v] = {"mean": statistics.fmean(scores), "std": statistics.stdev(scores) if len(scores) > 1 else None,
                       "n": len(scores)}
        summary.append({"settings": {k: members[0]["params"].get(k) for k in sorted(varying)},
                        "seeds": sorted(run["params"].get("train.seed") for run in members),
                        "runs": [run["name"] for run in members], "bleu": bleu})
    return {"runs": runs, "groups": summary}
