"""Plots (PNG, matplotlib's Agg backend: no display needed) and the self-contained HTML page.

- ``heatmap.png``: languages (rows, ordered by syntactic distance to English) x contrast
  (domain vs reference, per variant); colour = effect in points, a dot = significant (q < 0.05).
- ``effect_vs_distance.png``: per-language effect against syntactic distance, one panel per
  reference, a least-squares line per contrast, Spearman's rho in the legend.
- ``groups.png``: mean effect per distance tertile with 95% intervals, per contrast.
The HTML page embeds the PNGs (base64) and every table, so it is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from orchestrator.report import stats as S


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(r) -> str:
    variant = r["variant"].replace("robust_method=", "").replace(",noise_magnitude=", " @")
    return f"{r['domain']} vs {r['reference']} [{variant}]"


def heatmap(effects, typo, path: Path) -> None:
    """The per-language effect heatmap (languages by syntactic distance to English) as a PNG at ``path``."""
    plt = _plt()
    primary = f"dist_{typo.attrs['primary']}"
    langs = list(typo.sort_values(primary, kind="stable").index)
    cols = sorted({_label(r) for r in effects})
    grid = np.full((len(langs), len(cols)), np.nan)
    sig = np.zeros_like(grid, dtype=bool)
    for r in effects:
        i, j = langs.index(r["lang"]), cols.index(_label(r))
        grid[i, j], sig[i, j] = r["effect"], r["significant"]
    lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(cols), 1.2 + 0.32 * len(langs)))
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ys, xs = np.nonzero(sig)
    ax.scatter(xs, ys, s=12, c="black", marker="o", label="q < 0.05")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(langs)), [f"{lg} ({typo.loc[lg, primary]:.2f})" for lg in langs], fontsize=8)
    ax.set_ylabel(f"language ({typo.attrs['primary_label']})")
    fig.colorbar(im, ax=ax, label="effect (points)")
    ax.set_title("Effect of the domain, per language")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatter(effects, correlations, typo, path: Path) -> None:
    """Effect against syntactic distance to English, one panel per reference, with the correlations, as a PNG."""
    plt = _plt()
    refs = sorted({r["reference"] for r in effects})
    fig, axes = plt.subplots(1, len(refs), figsize=(5.5 * len(refs), 4.2), squeeze=False)
    rho = {(c["reference"], c["domain"], c["variant"]): c for c in correlations
           if c["distance"] == typo.attrs["primary"]}
    for ax, ref in zip(axes[0], refs):
        for label in sorted({_label(r) for r in effects if r["reference"] == ref}):
            rs = [r for r in effects if _label(r) == label and r["lang"] != "en"]
            x = np.array([typo.loc[r["lang"], f"dist_{typo.attrs['primary']}"] for r in rs])
            y = np.array([r["effect"] for r in rs])
            c = rho.get((rs[0]["reference"], rs[0]["domain"], rs[0]["variant"]), {})
            pts = ax.scatter(x, y, s=18, label=f"{label}  rho={c.get('rho', np.nan):.2f}")
            if len(x) >= 2 and np.ptp(x) > 0:
                slope, icpt = np.polyfit(x, y, 1)
                xs = np.linspace(x.min(), x.max(), 10)
                ax.plot(xs, slope * xs + icpt, color=pts.get_facecolor()[0], lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(typo.attrs["primary_label"])
        ax.set_ylabel(f"effect vs {ref} (points)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bars(groups, path: Path) -> None:
    """Group effects by distance tertile, with their intervals, as a PNG."""
    plt = _plt()
    rows = [g for g in groups if g["grouping"] == "distance tertile"]
    labels = sorted({_label(g) for g in rows})
    order = ["near", "mid", "far", "all"]
    present = [o for o in order if any(g["group"] == o for g in rows)]
    fig, ax = plt.subplots(figsize=(1.5 + 1.8 * len(labels), 3.8))
    width = 0.8 / max(1, len(present))
    for k, grp in enumerate(present):
        vals = [next((g for g in rows if _label(g) == lab and g["group"] == grp), None) for lab in labels]
        xs = np.arange(len(labels)) + k * width
        est = [v["effect"] if v else np.nan for v in vals]
        err = [[v["effect"] - v["low"] if v else 0 for v in vals], [v["high"] - v["effect"] if v else 0 for v in vals]]
        ax.bar(xs, est, width, yerr=np.nan_to_num(err), capsize=3, label=grp)
    ax.set_xticks(np.arange(len(labels)) + width * (len(present) - 1) / 2, labels, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("mean effect (points), 95% CI")
    ax.set_title("Effect by syntactic distance to English (tertiles)")
    ax.legend(title="distance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(rows, columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _what(key, seeds: int) -> str:
    return f"{key[1]} vs {key[0]} ({key[2].replace('robust_method=', '')}, {seeds} seed{'s' * (seeds != 1)})"


def _interval(r, value: str = "effect") -> str:
    if np.isnan(r.get("low", np.nan)):
        return f"{r[value]:+.2f}"
    return f"{r[value]:+.2f} [{r['low']:.2f}, {r['high']:.2f}], q = {r['q']:.2g}"


def summary_sentences(info, effects, groups, correlations, interaction) -> list[str]:
    """The page's opening answer: what was analysed, and one sentence per effect that matters."""
    ex = info.get("excluded") or {}
    out = [f"{info['analysed_runs']} of {info['trials']} trial runs of '{info['experiment']}' are completed and "
           f"analysed" + (f"; excluded: {', '.join(f'{n} {w}' for w, n in sorted(ex.items()))}." if ex else ".")]
    if info.get("seeds", 0) < 2:
        out.append(f"{S.DESCRIPTIVE}: with one seed there is no replication, so no interval and no test; "
                   f"run at least 3 seeds to test.")
    for key in sorted({(r["reference"], r["domain"], r["variant"]) for r in effects}):
        rs = [r for r in effects if (r["reference"], r["domain"], r["variant"]) == key and r["lang"] != "en"]
        seeds = min((r["seeds"] for r in rs), default=0)
        allg = next((g for g in groups if (g["reference"], g["domain"], g["variant"]) == key
                     and g["grouping"] == "all"), None)
        mean = f"mean over {len(rs)} target languages {_interval(allg)}" if allg else ""
        if seeds < 2:
            out.append(f"{_what(key, seeds)}: {mean} (descriptive).")
            continue
        up = [r["lang"] for r in rs if r["significant"] and r["effect"] > 0]
        down = [r["lang"] for r in rs if r["significant"] and r["effect"] < 0]
        if not up and not down:
            langs = "no language changes significantly (q < 0.05, Benjamini-Hochberg over every test)"
        else:
            gains = f"significant gains in {', '.join(up)}" if up else "no significant gain"
            losses = f"significant losses in {', '.join(down)}" if down else "no significant loss"
            langs = (f"{gains}, {losses}; the other {len(rs) - len(up) - len(down)} languages show no "
                     f"significant change")
        out.append(f"{_what(key, seeds)}: {mean}; {langs}.")
        corr = next((c for c in correlations if (c["reference"], c["domain"], c["variant"]) == key
                     and c["distance"] == info.get("distance", "syntax_knn")), None)
        if corr and not np.isnan(corr["p"]):
            sig = "significant" if corr["significant"] else "not significant"
            label = info.get("distance_label", "syntactic distance to English").split(" (")[0]
            out.append(f"  Its effect vs {label}: Spearman rho {corr['rho']:.2f} "
                       f"[{corr['low']:.2f}, {corr['high']:.2f}] over {corr['languages']} languages, "
                       f"{'exact ' if corr['exact'] else ''}permutation p = {corr['p']:.2g}, q = {corr['q']:.2g} "
                       f"({sig}).")
    for r in interaction:
        if r["significant"]:
            out.append(f"Interaction: under {r['variant'].replace('robust_method=', '')} the effect of {r['domain']} "
                       f"vs {r['reference']} differs from plain fine-tuning by {_interval(r, 'interaction')}.")
    return out


def _cell(g) -> str:
    if g is None:
        return "–"
    text = html.escape(_interval(g))
    return f"<b>{text}</b>" if g.get("significant") else text


def answer_tables(groups) -> str:
    """Per contrast and robust method, the effect by language group: all targets and the
    distance tertiles in one table, family and script in one table each."""
    keys = sorted({(g["reference"], g["domain"], g["variant"]) for g in groups})
    parts = []
    for title, groupings, order in (("By distance to English", ("all", "distance tertile"),
                                     ["all targets", "near", "mid", "far", "all"]),
                                    ("By family", ("family",), None), ("By script", ("script",), None)):
        rows = [g for g in groups if g["grouping"] in groupings]
        cols = sorted({g["group"] for g in rows}, key=lambda c: (order.index(c) if order and c in order else 99, c))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["contrast", "method", "seeds", *cols])
        body = []
        for key in keys:
            mine = {g["group"]: g for g in rows if (g["reference"], g["domain"], g["variant"]) == key}
            if not mine:
                continue
            seeds = min(g["seeds"] for g in mine.values())
            label = f"{key[1]} vs {key[0]}"
            method = key[2].replace("robust_method=", "").replace(",noise_magnitude=", " @")
            body.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(method)}</td><td>{seeds}</td>"
                        + "".join(f"<td>{_cell(mine.get(c))}</td>" for c in cols) + "</tr>")
        parts.append(f"<h3>{title}</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    return "".join(parts)


def _protocol(info) -> str:
    sampled = ", ".join(info.get("sampled_by_optuna") or []) or "none"
    lines = [f"Selection: {info['protocol']} (<code>--select {info['select']}</code>); "
             f"{info['seeds']} seed{'s' * (info['seeds'] != 1)}; up to {info['samples']} sample(s) per (cell, seed) "
             f"({info.get('samples_per_cell', 1)} planned); knobs sampled by Optuna: {html.escape(sampled)}."]
    if sampled != "none":
        lines.append("A sampled knob is not part of the cell: the two sides of a contrast each have their own "
                     "selected value (the protocol's choice, not a controlled factor).")
    if info.get("asha"):
        lines.append(f"<b>ASHA was on</b>: {info.get('stopped_early', 0)} trial(s) stopped early are excluded; "
                     f"contrasts use completed trials only, over the seeds both cells completed, so effects condition "
                     f"on surviving ASHA's early English-dev cut.")
    if info.get("seeds", 0) < 2:
        lines.append(f"<b>{S.DESCRIPTIVE}</b>: no interval and no test are shown.")
    return "<p>" + "<br>".join(lines) + "</p>"


def page(info, sentences, cells, effects, groups, correlations, interaction, typo, images: dict[str, Path]) -> str:
    """The self-contained HTML report (images inlined)."""
    def img(name):
        data = base64.b64encode(images[name].read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}">'

    def folded(title, body):
        return f"<details><summary><b>{html.escape(title)}</b></summary>{body}</details>"

    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
             "font-size:12px;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th{background:#f3f3f3}img{max-width:100%}li{margin:.2em 0}details{margin:.6em 0}"
             "summary{cursor:pointer}")
    typo_rows = typo.reset_index().to_dict("records")
    typo_cols = ["lang", "uriel", "name", "family", "script", "tertile"]
    typo_cols += [c for c in typo.columns if c.startswith(("dist_", "switch_"))]
    method = (f"<p>Effects are differences in points (cell minus reference, same robust-method variant), paired on the "
              f"seed and, where per-example results exist, on the test item. The seed is the unit of replication: "
              f"intervals (95 %) and tests are t-based over the per-seed effects, with the test items' own variance "
              f"added (crossed seeds x items random-effects model, Satterthwaite degrees of freedom); parallel test "
              f"sets are combined item by item across languages in groups, interactions and correlation intervals. "
              f"Correlations: Spearman's rho, permutation p (exact for up to {S.EXACT_PERMUTATIONS} languages), "
              f"interval from {info['bootstrap']} replicates resampling seeds, items and languages. q: "
              f"Benjamini-Hochberg over all {info['tests']} tests on this page (FDR 5 %); bold = q &lt; 0.05. "
              f"English is the source language and is left out of groups and correlations.</p>")
    title = html.escape(info["experiment"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>xlt-report: {title}</title>
<style>{style}</style></head><body>
<h1>{html.escape(info['experiment'])}: {html.escape(info['task'])} {html.escape(info['metric'])}</h1>
{_protocol(info)}
<h2>The answer: effect of the domain by language group</h2>
<p>Effect in points, [95 % interval], q; one row per contrast and robust method.</p>
{answer_tables(groups)}
<h2>Effect per language</h2>{img('heatmap')}
<h2>Method x domain interaction</h2>
<p>The domain effect under a robust method minus the domain effect under plain fine-tuning, mean over target
languages.</p>
{_table(interaction, ['reference', 'domain', 'variant', 'languages', 'interaction', 'low', 'high', 'p', 'q', 'seeds',
                      'note'])}
<h2>Summary</h2><ul>{''.join(f'<li>{html.escape(s)}</li>' for s in sentences)}</ul>
{method}
{folded('Effect vs typological distance', img('effect_vs_distance') + _table(correlations, [
        'reference', 'domain', 'variant', 'distance', 'rho', 'low', 'high', 'p', 'exact', 'q', 'languages', 'seeds',
        'note']))}
{folded('By typological group (all rows)', img('groups') + _table(groups, [
        'reference', 'domain', 'variant', 'grouping', 'group', 'languages', 'effect', 'low', 'high', 'p', 'q', 'seeds',
        'note']))}
{folded('Per-language effects', _table(effects, [
        'reference', 'domain', 'variant', 'lang', 'effect', 'low', 'high', 'p', 'q', 'seeds', 'examples', 'note']))}
{folded('Cells: mean, spread, seeds and samples', _table(cells.to_dict('records'), [
        'domain', 'variant', 'lang', 'mean', 'std', 'seeds', 'samples']))}
{folded('Languages', _table(typo_rows, typo_cols))}
</body></html>"""
