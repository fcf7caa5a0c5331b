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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(r) -> str:
    variant = r["variant"].replace("robust_method=", "").replace(",noise_magnitude=", " @")
    return f"{r['domain']} vs {r['reference']} [{variant}]"


def heatmap(effects, typo, path: Path) -> None:
    plt = _plt()
    langs = list(typo.sort_values("dist_syntax_knn").index)
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
    ax.set_yticks(range(len(langs)), [f"{lg} ({typo.loc[lg, 'dist_syntax_knn']:.2f})" for lg in langs], fontsize=8)
    ax.set_ylabel("language (syntactic distance to English)")
    fig.colorbar(im, ax=ax, label="effect (points)")
    ax.set_title("Effect of the domain, per language")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatter(effects, correlations, typo, path: Path) -> None:
    plt = _plt()
    refs = sorted({r["reference"] for r in effects})
    fig, axes = plt.subplots(1, len(refs), figsize=(5.5 * len(refs), 4.2), squeeze=False)
    rho = {(c["reference"], c["domain"], c["variant"]): c for c in correlations if c["distance"] == "syntax_knn"}
    for ax, ref in zip(axes[0], refs):
        for label in sorted({_label(r) for r in effects if r["reference"] == ref}):
            rs = [r for r in effects if _label(r) == label and r["lang"] != "en"]
            x = np.array([typo.loc[r["lang"], "dist_syntax_knn"] for r in rs])
            y = np.array([r["effect"] for r in rs])
            c = rho.get((rs[0]["reference"], rs[0]["domain"], rs[0]["variant"]), {})
            pts = ax.scatter(x, y, s=18, label=f"{label}  rho={c.get('rho', np.nan):.2f}")
            if len(x) >= 2 and np.ptp(x) > 0:
                slope, icpt = np.polyfit(x, y, 1)
                xs = np.linspace(x.min(), x.max(), 10)
                ax.plot(xs, slope * xs + icpt, color=pts.get_facecolor()[0], lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("syntactic distance to English (lang2vec syntax_knn, cosine)")
        ax.set_ylabel(f"effect vs {ref} (points)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bars(groups, path: Path) -> None:
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


def summary_sentences(info, effects, groups, correlations, interaction) -> list[str]:
    out = [f"{info['analysed_runs']} of {info['trials']} trial runs of '{info['experiment']}' have per-language "
           f"{info['task']} {info['metric']} and are analysed; the rest are failed, running or unfinished."]
    for key in sorted({(r["reference"], r["domain"], r["variant"]) for r in effects}):
        rs = [r for r in effects if (r["reference"], r["domain"], r["variant"]) == key and r["lang"] != "en"]
        up = [r["lang"] for r in rs if r["significant"] and r["effect"] > 0]
        down = [r["lang"] for r in rs if r["significant"] and r["effect"] < 0]
        seeds = min(r["seeds"] for r in rs) if rs else 0
        what = f"{key[1]} vs {key[0]} ({key[2].replace('robust_method=', '')}, {seeds} seed(s))"
        if not up and not down:
            out.append(f"{what}: no language changes significantly (q < 0.05 after Benjamini-Hochberg).")
        else:
            out.append(f"{what}: significant gains in {', '.join(up) or 'no language'}; significant losses in "
                       f"{', '.join(down) or 'no language'}; the other {len(rs) - len(up) - len(down)} "
                       f"languages show no significant change.")
        corr = next((c for c in correlations if (c["reference"], c["domain"], c["variant"]) == key
                     and c["distance"] == "syntax_knn"), None)
        if corr and not np.isnan(corr["rho"]):
            sig = "significant" if corr["p"] < 0.05 else "not significant"
            out.append(f"  Its effect vs syntactic distance to English: Spearman rho {corr['rho']:.2f} "
                       f"[{corr['low']:.2f}, {corr['high']:.2f}], p = {corr['p']:.3g} ({sig}).")
    for r in interaction:
        if r["p"] < 0.05:
            out.append(f"Interaction: under {r['variant'].replace('robust_method=', '')} the effect of {r['domain']} "
                       f"vs {r['reference']} differs from plain fine-tuning by {r['interaction']:+.2f} points "
                       f"[{r['low']:.2f}, {r['high']:.2f}].")
    return out


def page(info, sentences, cells, effects, groups, correlations, interaction, typo, images: dict[str, Path]) -> str:
    def img(name):
        data = base64.b64encode(images[name].read_bytes()).decode()
        return f'<img alt="{name}" src="data:image/png;base64,{data}">'

    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
             "font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th{background:#f3f3f3}img{max-width:100%}li{margin:.2em 0}")
    typo_rows = typo.reset_index().to_dict("records")
    title = html.escape(info["experiment"])
    typo_cols = ["lang", "uriel", "name", "family", "script", "tertile"]
    typo_cols += [c for c in typo.columns if c.startswith("dist_")]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>xlt-report: {title}</title>
<style>{style}</style></head><body>
<h1>{html.escape(info['experiment'])}: {html.escape(info['task'])} {html.escape(info['metric'])}</h1>
<h2>Summary</h2><ul>{''.join(f'<li>{html.escape(s)}</li>' for s in sentences)}</ul>
<p>Effects are differences in points (cell minus reference, same robust-method variant, paired on seed and test
example). Intervals: 95% percentile bootstrap over seeds and test examples ({info['bootstrap']} replicates).
p: two-sided paired bootstrap; q: Benjamini-Hochberg over all {len(effects)} per-language tests (FDR 5%).
English is the source language and is left out of groups and correlations.</p>
<h2>Effect per language</h2>{img('heatmap')}
<h2>Effect vs typological distance</h2>{img('effect_vs_distance')}
{_table(correlations, ['reference', 'domain', 'variant', 'distance', 'rho', 'low', 'high', 'p', 'languages'])}
<h2>By typological group</h2>{img('groups')}
{_table(groups, ['reference', 'domain', 'variant', 'grouping', 'group', 'languages', 'effect', 'low', 'high', 'p'])}
<h2>Method x domain interaction</h2>
<p>The domain effect under a robust method minus the domain effect under plain fine-tuning, mean over languages.</p>
{_table(interaction, ['reference', 'domain', 'variant', 'languages', 'interaction', 'low', 'high', 'p'])}
<h2>Per-language effects</h2>
{_table(effects, ['reference', 'domain', 'variant', 'lang', 'effect', 'low', 'high', 'p', 'q', 'seeds', 'examples'])}
<h2>Cells: mean, spread and seeds</h2>
{_table(cells.to_dict('records'), ['domain', 'variant', 'lang', 'mean', 'std', 'seeds'])}
<h2>Languages</h2>
{_table(typo_rows, typo_cols)}
</body></html>"""
