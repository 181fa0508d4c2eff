"""Self-contained HTML report of a study analysis (:class:`inference.analysis.StudyResult`).

One file that opens offline: figures are matplotlib PNGs inlined as base64, styles are inline,
nothing is fetched from a network; the layout reflows down to phone widths (wide tables scroll
sideways inside their box). Sections: headline (σ at the requested temperature vs the paper —
or, for a simulated study, vs the simulation's truth, under a "simulated" banner), σ/Ea table,
recipe comparisons, Arrhenius plots (per recipe, then per cell), impedance fits per
recipe (equal-aspect Nyquist plots with a zoom on the high-frequency arcs, Bode, residuals with
the Kramers–Kronig residuals), DC I–V fits per recipe, the per-spectrum parameter table (every
resistance with its 90 % interval and the record's verdict), rate-capability prediction,
diagnostics per record (failures and flags highlighted), provenance. Every axis states its
quantity and unit.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math

import numpy as np

from inference import arrhenius as arr
from inference import diagnostics as dg
from inference.plots import N_BAND_DRAWS
from inference.rate_capability import PROXY_ERROR_LOGIT_SD

ZERO_C_K = 273.15
#: Colour per recipe, in recipe order (colour-blind-safe Okabe–Ito palette).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
KIND_LABEL = {"ionic": "ionic σ_ion", "electronic": "electronic σ_el"}
FORM_LABEL = {"sigma": "σ = σ0·exp(−Ea/kT)", "sigmaT": "σ·T = A·exp(−Ea/kT)"}
PRIOR_PILL = '<span class="pill warn" title="interval set by the prior">prior-dominated</span>'
#: Nyquist panels per recipe: temperatures of one representative cell, lowest to highest.
NYQUIST_COLUMNS = 3

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d2330; margin: 0; background: #f5f6f8; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 1.8em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.3em; margin-top: 2.2em; border-bottom: 2px solid #e3e6eb; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
.sub { color: #5b6475; margin: 0 0 1em; }
.note { color: #5b6475; font-size: 0.92em; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em;
        font-weight: 600; }
.ok { background: #e3f4e8; color: #1b6b34; }
.warn { background: #fff2d6; color: #8a5a00; }
.bad { background: #fde2e1; color: #a1211b; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.93em; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e6e8ec; text-align: right; }
th { background: #f0f2f5; font-weight: 600; }
td.l, th.l { text-align: left; }
tr.failed td { background: #fdecea; }
tr.flagged td { background: #fff8e6; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 1em 0; }
.card { border: 1px solid #e3e6eb; border-radius: 8px; padding: 10px 14px; min-width: 200px; }
.card .v { font-size: 1.35em; font-weight: 600; }
.card .k { color: #5b6475; font-size: 0.85em; }
figure { margin: 0.8em 0 1.2em; }
figure img { max-width: 100%; border: 1px solid #eceef2; border-radius: 6px; }
figcaption { color: #5b6475; font-size: 0.9em; margin-top: 4px; }
code, pre { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f3f4f7; padding: 10px 12px; border-radius: 6px; white-space: pre-wrap; }
.banner { border-radius: 8px; padding: 10px 14px; margin: 1em 0; }
.banner.bad { background: #fde2e1; color: #7d1a15; }
.banner.sim { background: #e8f0fb; color: #17365d; }
td { white-space: nowrap; }
td:last-child { white-space: normal; }
td .note { white-space: normal; display: inline-block; max-width: 22em; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
.scroll table { margin: 0.3em 0; }
.scroll td:first-child, .scroll th:first-child { position: sticky; left: 0; z-index: 1; }
.scroll td:first-child { background: #fff; }
.scroll tr.failed td:first-child { background: #fdecea; }
.scroll tr.flagged td:first-child { background: #fff8e6; }
td .ci { color: #5b6475; font-size: 0.9em; }
@media (max-width: 720px) {
  main { padding: 12px 10px 40px; }
  h1 { font-size: 1.35em; }
  .card { min-width: 130px; padding: 8px 10px; }
  table { font-size: 0.85em; }
  th, td { padding: 4px 6px; }
  td .note { max-width: 12em; }
}
"""


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------


def _e(text) -> str:
    return html.escape(str(text))


def _sci(x: float, digits: int = 2) -> str:
    """1.23×10⁻⁴ style for the tables."""
    if x is None or not math.isfinite(x):
        return "–"
    exp = math.floor(math.log10(abs(x))) if x else 0
    mant = x / 10**exp
    return f"{mant:.{digits}f}×10<sup>{exp}</sup>"


def _num(x, fmt: str = ".3f") -> str:
    try:
        return format(float(x), fmt) if math.isfinite(float(x)) else "–"
    except (TypeError, ValueError):
        return "–"


def _table(header: list[str], rows: list[list[str]], left: int = 1, classes=None) -> str:
    head = "".join(
        f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>" for i, h in enumerate(header)
    )
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        cells = "".join(
            f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{src}" alt="{_e(caption)}"><figcaption>{caption}</figcaption></figure>'
    )


def _colors(result) -> dict[str, str]:
    recipes = list(dict.fromkeys(result.records["recipe"].tolist()))
    return {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(recipes)}


def is_simulated(result) -> bool:
    """The study was simulated (``simulated = true`` in its manifest, or it ships a truth)."""
    return bool(result.settings.get("simulated")) or bool(result.truth)


def reference_sigma(result, recipe: str, kind: str, temperature_C: float) -> float | None:
    """The value σ (S/cm) is checked against: for a simulated study the simulation's recipe
    truth (Arrhenius from its 30 °C value and Ea), otherwise the paper's, or ``None``."""
    if is_simulated(result):
        true = result.truth.get((recipe, kind), {})
        if "log10_sigma_30C" not in true:
            return None
        t_k = temperature_C + ZERO_C_K
        log10_s = true["log10_sigma_30C"] - true.get("Ea_eV", 0.0) / (
            arr.K_B_EV_PER_K * arr.LN10
        ) * (1 / t_k - 1 / arr.T_30C_K)
        return float(10.0**log10_s)
    return result.paper.get("sigma", {}).get((recipe, kind, float(temperature_C)))


def reference_label(result) -> str:
    """How the reference values are named in tables and legends."""
    return "truth (simulation)" if is_simulated(result) else "paper"


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
        }
    )
    return plt


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def headline_figure(result, temperature_C: float) -> str:
    """σ at ``temperature_C`` per recipe: posterior median and 90 % interval, paper values."""
    plt = _plt()
    kinds = result.kinds
    colors = _colors(result)
    fig, axes = plt.subplots(
        1,
        len(kinds),
        figsize=(5.6 * len(kinds), 0.6 + 0.55 * 4),
        layout="constrained",
        squeeze=False,
    )
    for ax, kind in zip(axes[0], kinds, strict=True):
        table = result.conductivity_table(temperature_C)
        table = table[table["kind"] == kind].reset_index(drop=True)
        draws = result.log10_sigma_draws(kind, temperature_C)
        for i, row in table.iterrows():
            y = len(table) - 1 - i
            d = 10.0 ** draws.sel(recipe=row["recipe"]).values.ravel()
            parts = ax.violinplot(d, positions=[y], vert=False, widths=0.7, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(colors[row["recipe"]])
                body.set_alpha(0.35)
            ax.hlines(
                y,
                row["ci90_lo_S_per_cm"],
                row["ci90_hi_S_per_cm"],
                color=colors[row["recipe"]],
                lw=3,
            )
            ax.plot(row["median_S_per_cm"], y, "o", color=colors[row["recipe"]], ms=7)
            ref = reference_sigma(result, row["recipe"], kind, temperature_C)
            if ref:
                ax.plot(
                    ref,
                    y,
                    marker="*",
                    color="#222",
                    ms=13,
                    ls="none",
                    label=reference_label(result) if i == 0 else None,
                )
        ax.set_yticks(range(len(table)), list(table["recipe"])[::-1])
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(f"{KIND_LABEL[kind]} at {temperature_C:g} °C (S/cm)")
        ax.set_ylim(-0.6, len(table) - 0.4)
        if is_simulated(result) or result.paper.get("sigma"):
            ax.legend(loc="best", frameon=False)
    return _png(fig)


def arrhenius_figure(result, kind: str) -> str:
    """log10 σ vs 1000/T: stage-1 points (±1 sd), posterior median and 90 % band per recipe."""
    plt = _plt()
    colors = _colors(result)
    tree = result.arrhenius[kind]
    recs = result.records[(result.records["kind"] == kind) & (result.records["status"] == "ok")]
    t_k = recs["temperature_K"].to_numpy(float)
    t_grid = np.linspace(min(t_k.min(), 303.15) - 3, t_k.max() + 3, 60)
    fig, ax = plt.subplots(figsize=(10.5, 4.8), layout="constrained")
    markers = "osD^v<>p"
    outlier = result.outlier_probability()
    out_ids = [rid for rid in recs["id"] if outlier.get(rid, 0.0) > 0.5]
    for recipe in result.recipes(kind):
        c = colors[recipe]
        draws = np.stack(
            [arr.log10_sigma_at(tree, t).sel(recipe=recipe).values.ravel() for t in t_grid]
        )
        lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95], axis=1)
        x = 1000.0 / t_grid
        ax.fill_between(x, 10**lo, 10**hi, color=c, alpha=0.18, lw=0)
        ax.plot(x, 10**med, color=c, lw=1.8, label=f"{recipe} (posterior median, 90 % band)")
        sub = recs[recs["recipe"] == recipe]
        for j, cell in enumerate(dict.fromkeys(sub["cell"])):
            pts = sub[sub["cell"] == cell]
            y = pts["log10_sigma"].to_numpy(float)
            sd = np.hypot(pts["log10_sigma_sd"].to_numpy(float), pts["geometry_sd"].to_numpy(float))
            xx = 1000.0 / pts["temperature_K"].to_numpy(float)
            ax.errorbar(
                xx,
                10**y,
                yerr=[10**y - 10 ** (y - sd), 10 ** (y + sd) - 10**y],
                fmt=markers[j % len(markers)],
                color=c,
                ms=4.5,
                mfc="white",
                mew=1.2,
                elinewidth=1,
                capsize=0,
                alpha=0.9,
            )
        ref = reference_sigma(result, recipe, kind, 30.0)
        if ref:
            ax.plot(1000 / (30 + ZERO_C_K), ref, marker="*", color=c, mec="#222", ms=15, ls="none")
    if out_ids:
        pts = recs[recs["id"].isin(out_ids)]
        ax.plot(
            1000.0 / pts["temperature_K"],
            10 ** pts["log10_sigma"],
            "x",
            color="#c0392b",
            ms=9,
            mew=2,
            ls="none",
            label="set aside as outlier (P > 0.5)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (K⁻¹)")
    ax.set_ylabel(f"{KIND_LABEL[kind]} (S/cm)")
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda x: 1000 / np.maximum(x, 1e-9) - ZERO_C_K,
            lambda c: 1000 / (c + ZERO_C_K),
        ),
    )
    top.set_xlabel("T (°C)")
    handles, labels = ax.get_legend_handles_labels()
    if is_simulated(result) or result.paper.get("sigma"):
        handles.append(plt.Line2D([], [], marker="*", color="#888", mec="#222", ms=12, ls="none"))
        labels.append(f"{reference_label(result)}, 30 °C")
    handles.append(plt.Line2D([], [], marker="o", color="#666", mfc="white", ls="none"))
    labels.append("one spectrum / record (±1 sd); marker = cell")
    ax.legend(
        handles, labels, frameon=False, fontsize=8.5, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    return _png(fig)


def _cell_records(result, recipe: str, spectra: bool) -> list:
    """(record id, curves) of the recipe's best-covered cell, lowest to highest temperature."""
    mine = {
        rid: c
        for rid, c in result.curves.items()
        if c.attrs.get("recipe") == recipe and ("frequency" in c.dims) == spectra
    }
    if not mine:
        return []
    cells = [c.attrs["cell"] for c in mine.values()]
    cell = max(dict.fromkeys(cells), key=cells.count)
    return sorted(
        ((rid, c) for rid, c in mine.items() if c.attrs["cell"] == cell),
        key=lambda item: item[1].attrs["temperature_K"],
    )


def _picked(items: list, n: int = NYQUIST_COLUMNS) -> list:
    """At most ``n`` items, evenly spread (lowest, middle, highest temperature)."""
    idx = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).astype(int))
    return [items[i] for i in idx]


def _model(result, rid: str, curve):
    """(data f, data Z, fit-grid f, model draws on the grid, model median at the data f)."""
    from inference.fit import model_curves

    circuit = result.settings["circuit"]
    post = result.posterior(rid, keep=N_BAND_DRAWS)
    f = curve["frequency"].values
    z = curve["z_real"].values + 1j * curve["z_imag"].values
    f_fit = curve["frequency_fit"].values
    draws = model_curves(circuit, post, f_fit, max_draws=post.sizes["chain"] * post.sizes["draw"])
    at_data = model_curves(circuit, post, f, max_draws=post.sizes["chain"] * post.sizes["draw"])
    median = np.median(at_data.real, axis=0) + 1j * np.median(at_data.imag, axis=0)
    return f, z, f_fit, draws, median


def _zoom_limits(result, rid: str, z) -> tuple[float, float, float, float] | None:
    """Ω limits of a zoom on the arcs before the composite arc, when they are small.

    The zoom spans the data's high-frequency intercept plus the fitted R of every arc but the
    composite one (posterior medians), 15 % padded; None when those arcs already take 40 % or
    more of the plot's width, or the circuit has a single arc.
    """
    from inference.circuits import parse_circuit

    c = parse_circuit(result.settings["circuit"])
    composite = result.settings.get("resistance")
    others = [a.r for a in c.arcs if a.r != composite]
    if not others or composite is None:
        return None
    post = result.posterior(rid)
    width = sum(float(np.median(post[r].values)) for r in others)
    x0 = float(np.min(z.real))
    span = float(np.max(z.real)) - min(x0, 0.0)
    if not (0 < width < 0.4 * span):
        return None
    pad = 0.15 * width
    inside = z[(z.real >= x0 - pad) & (z.real <= x0 + width + pad)]
    top = max(float(np.max(-inside.imag, initial=0.0)), 0.25 * width)
    return x0 - pad, x0 + width + pad, -0.5 * pad, top + 0.5 * pad


def nyquist_figure(result, recipe: str) -> str | None:
    """Equal-aspect Nyquist plots of one representative cell at up to three temperatures (data,
    fitted median, 90 % band of the model curve), with a zoom row on the small high-frequency
    arcs when they would otherwise be invisible."""
    from matplotlib.patches import Rectangle

    from inference.plots import nyquist, nyquist_limits

    items = _picked(_cell_records(result, recipe, spectra=True))
    if not items:
        return None
    plt = _plt()
    color = _colors(result)[recipe]
    models = [_model(result, rid, c) for rid, c in items]
    zooms = [_zoom_limits(result, rid, m[1]) for (rid, _), m in zip(items, models, strict=True)]
    rows = 2 if any(zooms) else 1
    fulls = [nyquist_limits(np.concatenate([m[1], m[3].ravel()])) for m in models]

    def aspect(limits) -> float:
        return float(np.clip((limits[3] - limits[2]) / (limits[1] - limits[0]), 0.2, 1.0))

    width = 4.2
    heights = [width * max(aspect(lim) for lim in fulls) + 1.1]
    if rows == 2:
        heights.append(width * max(aspect(z) for z in zooms if z) + 1.1)
    fig, axes = plt.subplots(
        rows, len(items), figsize=(width * len(items), sum(heights) + 0.5), layout="constrained",
        squeeze=False, gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for col, ((_, curve), (_, z, _, draws, _), zoom, full) in enumerate(
        zip(items, models, zooms, fulls, strict=True)
    ):
        ax = axes[0][col]
        nyquist(ax, z, draws, color=color, label=col == 0, limits=full)
        ax.set_title(f"{curve.attrs['temperature_K'] - ZERO_C_K:.0f} °C", fontsize=10)
        if rows == 2:
            zax = axes[1][col]
            if zoom is None:
                zax.axis("off")
                continue
            nyquist(zax, z, draws, color=color, label=False, limits=zoom)
            zax.set_title("zoom: high-frequency arcs", fontsize=9)
            ax.add_patch(
                Rectangle((zoom[0], zoom[2]), zoom[1] - zoom[0], zoom[3] - zoom[2], fill=False,
                          ec="#555", lw=0.8, ls="--")
            )  # fmt: skip
    fig.legend(frameon=False, fontsize=8.5, loc="outside lower center", ncols=3)
    fig.suptitle(f"{recipe}: cell {items[0][1].attrs['cell']}", fontsize=11)
    return _png(fig)


def bode_figure(result, recipe: str) -> str | None:
    """Bode |Z| and phase, and residuals (data − median fit)/|Z| with the Lin-KK residuals, of
    the Nyquist figure's cell at the same temperatures (colour = temperature)."""
    from inference.kramers_kronig import kk_check
    from inference.plots import bode, residuals
    from inference.spectrum import make_spectrum

    items = _picked(_cell_records(result, recipe, spectra=True))
    if not items:
        return None
    plt = _plt()
    shades = plt.cm.viridis(np.linspace(0.0, 0.8, len(items)))
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 6.4), layout="constrained")
    for (rid, curve), shade in zip(items, shades, strict=True):
        f, z, f_fit, draws, median = _model(result, rid, curve)
        label = f"{curve.attrs['temperature_K'] - ZERO_C_K:.0f} °C"
        bode(axes[0][0], axes[0][1], f, z, f_fit, draws, color=shade, label=label)
        residuals(axes[1][0], f, z, median, color=shade)
        kk = kk_check(make_spectrum(f, z.real, z.imag, source=rid))
        residuals(axes[1][1], f, z, kk.z_fit, color=shade, threshold=kk.threshold)
    axes[0][0].legend(frameon=False, fontsize=8.5)
    axes[0][0].set_title("Bode: |Z|", fontsize=10)
    axes[0][1].set_title("Bode: phase", fontsize=10)
    axes[1][0].set_title("fit residuals (○ Re, □ Im)", fontsize=10)
    axes[1][1].set_title("Lin-KK residuals; dotted: Kramers–Kronig pass band", fontsize=10)
    fig.suptitle(f"{recipe}: cell {items[0][1].attrs['cell']}", fontsize=11)
    return _png(fig)


def iv_figure(result, recipe: str) -> str | None:
    """DC polarization of one representative electron cell: steady-state current per bias and
    the fitted I = (V − V0)/R (median, 90 % band), one colour per temperature."""
    from inference.plots import iv

    items = _cell_records(result, recipe, spectra=False)
    if not items:
        return None
    plt = _plt()
    shades = plt.cm.viridis(np.linspace(0.0, 0.85, len(items)))
    fig, ax = plt.subplots(figsize=(6.2, 3.8), layout="constrained")
    for (rid, steps), shade in zip(items, shades, strict=True):
        post = result.posterior(rid, keep=N_BAND_DRAWS)
        iv(ax, steps["voltage_V"].values, steps["current_A"].values,
           steps["current_sd_A"].values, post["R_ohm"].values, post["V0_V"].values, color=shade,
           label=f"{steps.attrs['temperature_K'] - ZERO_C_K:.0f} °C")  # fmt: skip
    ax.legend(frameon=False, fontsize=8.5, title="temperature", title_fontsize=8.5)
    ax.set_title(f"{recipe}: cell {items[0][1].attrs['cell']}", fontsize=10)
    return _png(fig)


def arrhenius_cells_figure(result, kind: str) -> str | None:
    """Arrhenius plot per cell, as deviations from the recipe: one panel per recipe; each cell's
    points (±1 sd: fit and geometry) and its own posterior line (the cell level and slope of
    the hierarchical model, median and 90 % band), both minus the recipe-level median line, so that
    cells that would overlap on a log σ axis stand apart."""
    tree = result.arrhenius[kind]
    post = tree["posterior"]
    if "log10_sigma_ref_cell" not in post:
        return None
    recs = result.records[(result.records["kind"] == kind) & (result.records["status"] == "ok")]
    recipes = [r for r in result.recipes(kind) if (recs["recipe"] == r).any()]
    if not recipes:
        return None
    plt = _plt()
    t_ref = float(tree.attrs["reference_temperature_K"])
    t_k = recs["temperature_K"].to_numpy(float)
    grid = np.linspace(t_k.min() - 3, t_k.max() + 3, 40)
    fig, axes = plt.subplots(
        1, len(recipes), figsize=(4.0 * len(recipes), 3.3), layout="constrained", squeeze=False,
        sharey=True,
    )  # fmt: skip
    markers = "osD^v<>p"
    for ax, recipe in zip(axes[0], recipes, strict=True):
        ea = post["Ea"].sel(recipe=recipe).values.ravel()

        def slope(t_kelvin, ea=ea):
            return arr.slope_decades_per_inverse_K(ea)[:, None] * (1 / t_kelvin - 1 / t_ref)

        a = post["log10_sigma_ref"].sel(recipe=recipe).values.ravel()[:, None]
        recipe_line = np.median(a - slope(grid[None, :]), axis=0)
        sub = recs[recs["recipe"] == recipe]
        cells = list(dict.fromkeys(sub["cell"]))
        shades = plt.cm.viridis(np.linspace(0.0, 0.85, len(cells)))
        x = 1000.0 / grid
        for k, (cell, shade) in enumerate(zip(cells, shades, strict=True)):
            level = post["log10_sigma_ref_cell"].sel(cell=cell).values.ravel()[:, None]
            # the cell's own slope where the model has one (Ea_cell), else its recipe's
            own = post["Ea_cell"].sel(cell=cell).values.ravel() if "Ea_cell" in post else ea
            line = level - slope(grid[None, :], own)
            lo, med, hi = np.quantile(line, [0.05, 0.5, 0.95], axis=0)
            ax.fill_between(x, lo - recipe_line, hi - recipe_line, color=shade, alpha=0.15, lw=0)
            ax.plot(x, med - recipe_line, color=shade, lw=1.4, label=cell)
            pts = sub[sub["cell"] == cell]
            t_pts = pts["temperature_K"].to_numpy(float)
            at_pts = np.median(a - slope(t_pts[None, :]), axis=0)
            sd = np.hypot(pts["log10_sigma_sd"].to_numpy(float), pts["geometry_sd"].to_numpy(float))
            ax.errorbar(1000.0 / t_pts, pts["log10_sigma"].to_numpy(float) - at_pts, yerr=sd,
                        fmt=markers[k % len(markers)], ms=4, color=shade, mfc="white",
                        elinewidth=1, ls="none")  # fmt: skip
        ax.axhline(0, color="#444", lw=1, ls="--")
        ax.set_title(recipe, fontsize=10)
        ax.set_xlabel("1000 / T (K⁻¹)")
        ax.legend(frameon=False, fontsize=7.5, loc="best")
    axes[0][0].set_ylabel("log10 σ − recipe median (decades)")
    return _png(fig)


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------


def _status_pill(result) -> str:
    """The badge: the study's verdict (:func:`inference.diagnostics.study_verdict`), which
    reflects every layer: each Arrhenius layer and the stage-1 records."""
    verdict, reasons = result.verdict()
    counts = result.records["verdict"].value_counts()
    n = len(result.records)
    tally = f"{counts.get('ok', 0)} of {n} records ok"
    if verdict == "ok":
        layers = " · ".join(f"{k} converged" for k in result.layer_verdicts())
        return f'<span class="pill ok">ok · {_e(layers)} · {_e(tally)}</span>'
    return (
        f'<span class="pill bad">warning · {_e(tally)}</span> '
        f'<span class="note">{_e("; ".join(reasons))}</span>'
    )


def _pill_inside(lo: float, value: float | None, hi: float) -> str:
    if value is None:
        return ""
    if lo <= value <= hi:
        return ' <span class="pill ok">in 90 %</span>'
    return ' <span class="pill warn">outside</span>'


def _sigma_table(result, temperature_C: float) -> str:
    ea = result.activation_energy_table()
    sig = result.conductivity_table(temperature_C)
    simulated = is_simulated(result)
    has_ref = simulated or bool(result.paper.get("sigma"))
    label = reference_label(result)
    header = ["recipe", "kind", f"σ({temperature_C:g} °C) median", "90 % interval (S/cm)"]
    if has_ref:
        header += [label, f"median / {label.split(' ')[0]}"]
    header += ["Ea median (eV)", "Ea 90 % interval"]
    if simulated:
        header += ["Ea truth (simulation)"]
    rows = []
    for s in sig.itertuples():
        e = ea[(ea["recipe"] == s.recipe) & (ea["kind"] == s.kind)].iloc[0]
        row = [
            f"<b>{_e(s.recipe)}</b>",
            s.kind,
            _sci(s.median_S_per_cm),
            f"{_sci(s.ci90_lo_S_per_cm)} – {_sci(s.ci90_hi_S_per_cm)}"
            + (f" {PRIOR_PILL}" if s.prior_dominated else ""),
        ]
        if has_ref:
            ref = reference_sigma(result, s.recipe, s.kind, temperature_C)
            mark = _pill_inside(s.ci90_lo_S_per_cm, ref, s.ci90_hi_S_per_cm)
            row += [
                (_sci(ref) + mark) if ref else "–",
                _num(s.median_S_per_cm / ref, ".2f") if ref else "–",
            ]
        width = max(e.ci90_hi_eV - e.ci90_lo_eV, 1e-6)
        fmt = f".{max(3, 1 - math.floor(math.log10(width)))}f"
        row += [
            _num(e.median_eV, fmt),
            f"{_num(e.ci90_lo_eV, fmt)} – {_num(e.ci90_hi_eV, fmt)}"
            + (f" {PRIOR_PILL}" if e.prior_dominated else ""),
        ]
        if simulated:
            true = result.truth.get((s.recipe, s.kind), {}).get("Ea_eV")
            mark = _pill_inside(e.ci90_lo_eV, true, e.ci90_hi_eV)
            row += [_num(true, fmt) + mark if true is not None else "–"]
        rows.append(row)
    table = _table(header, rows, left=2)
    if simulated and result.paper.get("sigma"):
        table += (
            '<p class="note">Checked against the <b>simulation\'s recipe truth</b> '
            "(truth.json). The simulated recipes were given the paper's 30 °C conductivities "
            "as their truth, so agreement with the paper here is by construction, not an "
            "independent check of the paper.</p>"
        )
    return table


def _comparison_table(result) -> str:
    ratios = result.paper.get("ratios", {})
    simulated = is_simulated(result)
    rows = []
    for t in result.settings.get("temperatures_C", [30.0]):
        for c in result.comparisons(t):
            row = [
                f"<b>{_e(c['numerator'])}</b> / {_e(c['denominator'])}",
                c["kind"],
                f"{c['temperature_C']:g} °C",
                _num(c["ratio_median"], ".3g") + "×",
                f"{_num(c['ratio_ci90'][0], '.3g')} – {_num(c['ratio_ci90'][1], '.3g')}",
                _num(c["p_greater"], ".3f"),
            ]
            if simulated:
                a, b = (
                    reference_sigma(result, c[k], c["kind"], c["temperature_C"])
                    for k in ("numerator", "denominator")
                )
                true = a / b if a and b else None
                lo, hi = c["ratio_ci90"]
                mark = _pill_inside(lo, true, hi)
                row.append(_num(true, ".3g") + "×" + mark if true else "–")
            rows.append(row)
    header = ["ratio", "kind", "T", "median", "90 % interval", "P(ratio > 1)"]
    table = _table(header + (["truth (simulation)"] if simulated else []), rows, left=2)
    if ratios:
        quoted = ", ".join(f"{_e(k)} = {v:g}×" for k, v in ratios.items())
        table += f'<p class="note">Ratios quoted by the paper (30 °C): {quoted}.</p>'
    return table


def _rate_table(result) -> str:
    rate = result.rate_capability_table()
    if rate.empty:
        return '<p class="note">No ionic layer: no prediction.</p>'
    paper = result.paper.get("retention", {})
    rows = []
    for r in rate.itertuples():
        label = {1 / 3: "C/3", 1 / 2: "C/2"}.get(r.c_rate_per_h, f"{r.c_rate_per_h:g}C")
        p = next(
            (
                v
                for (rec, c), v in paper.items()
                if rec == r.recipe and math.isclose(c, r.c_rate_per_h)
            ),
            None,
        )
        rows.append(
            [
                f"<b>{_e(r.recipe)}</b>",
                label,
                f"{r.temperature_C:g} °C",
                f"{100 * r.median:.0f} %",
                f"{100 * r.ci90_lo:.0f} – {100 * r.ci90_hi:.0f} %",
                f"{100 * p:.0f} %" if p is not None else "–",
            ]
        )
    return _table(
        ["recipe", "rate", "T", "predicted retention", "90 % interval", "paper"], rows, left=2
    )


def _arrhenius_diag_table(result) -> str:
    rows = []
    for (kind, tree), (verdict, reasons) in zip(
        result.arrhenius.items(), result.layer_verdicts().values(), strict=True
    ):
        a = tree.attrs
        post = tree["posterior"]
        tau = float(np.median(post["tau_cell"].values))
        extra = float(np.median(post["extra_scatter"].values))
        rows.append(
            [
                kind,
                a.get("model", ""),
                FORM_LABEL.get(a.get("arrhenius_form", "sigma"), ""),
                _num(a["max_rhat"]),
                _num(a["min_ess_bulk"], ".0f"),
                _num(a.get("min_ess_tail"), ".0f"),
                str(a["divergences"]),
                _num(a.get("bfmi"), ".2f"),
                f"{a['reference_temperature_K']:.1f} K",
                _num(tau, ".3f"),
                _num(extra, ".4f"),
                f'<span class="pill {VERDICT_PILL[verdict]}">{verdict}</span> '
                f'<span class="note">{_e("; ".join(reasons))}</span>',
            ]
        )
    return _table(
        [
            "layer",
            "model",
            "form",
            "max r̂",
            "min ESS bulk",
            "min ESS tail",
            "divergences",
            "E-BFMI",
            "T_ref",
            "cell spread τ (dec)",
            "extra scatter (dec)",
            "verdict",
        ],
        rows,
        left=3,
    )


VERDICT_PILL = {"ok": "ok", "warning": "warn", "excluded": "bad"}
#: Roles of the default circuit's resistances in the 5-layer ion-blocking cell (physics.md §2.5).
DEFAULT_ROLES = {"R0": "series", "R1": "SE bulk", "R2": "interfaces", "R3": "composite"}
#: Circuit → roles of its resistances, for the circuits sigmalab writes or defaults to (the
#: virtual lab's: the separators' arc lies above the window, so R0 holds them with the leads).
KNOWN_ROLES = {
    ("R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)", "R3"): DEFAULT_ROLES,
    ("L0-R0-p(R1,CPE1)-TLMs2", "TLMs2_0"): {
        "R0": "series + SE",
        "R1": "interfaces",
        "TLMs2_0": "composite",
    },
}


def record_verdict(row, outlier: dict[str, float]) -> tuple[str, str, str]:
    """(css class, label, reasons) of one stage-1 record for the tables.

    Uses the record's ``verdict`` and ``reasons`` where the analysis gives them (ok | warning |
    excluded); else its ``status`` with the Kramers–Kronig and outlier flags (``outlier``:
    record id → P(outlier) in the Arrhenius layer).
    """
    verdict = getattr(row, "verdict", None)
    if isinstance(verdict, str) and verdict:
        reasons = getattr(row, "reasons", "") or ""
        if not isinstance(reasons, str):
            reasons = "; ".join(map(str, reasons))
        return VERDICT_PILL.get(verdict, "bad"), verdict, reasons
    if row.status != "ok":
        return "bad", str(row.status), str(row.reason)
    p_out = outlier.get(row.id)
    if p_out is not None and p_out > 0.5:
        return "warn", "outlier", f"set aside by the Arrhenius layer (P = {p_out:.2f})"
    if row.kk_passed is False:
        return "warn", "KK failed", "Kramers–Kronig check failed (kept)"
    return "ok", "ok", ""


def _eng(value: float, unit: str) -> tuple[str, float]:
    """SI prefix for ``value``: (prefix + unit, scale to divide by)."""
    if not math.isfinite(value) or value == 0:
        return unit, 1.0
    power = min(max(math.floor(math.log10(abs(value)) / 3), -4), 4)
    return {-4: "p", -3: "n", -2: "µ", -1: "m", 0: "", 1: "k", 2: "M", 3: "G", 4: "T"}[
        power
    ] + unit, 1000.0**power


def _interval_cell(draws, unit: str) -> str:
    """``16.1 Ω`` with its 90 % interval ``15.8–16.4`` below, in one SI prefix."""
    x = np.asarray(draws, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if not x.size:
        return "–"
    lo, med, hi = np.quantile(x, [0.05, 0.5, 0.95])
    prefixed, scale = _eng(med, unit)
    return (
        f'{med / scale:.3g} {prefixed}<br><span class="ci">{lo / scale:.3g}–{hi / scale:.3g}</span>'
    )


def _parameters_table(result) -> str:
    """One row per spectrum: every resistance of the circuit (median, 90 % interval), σ and
    the record's verdict; the composite resistance (the one σ comes from) marked σ."""
    from inference.circuits import parse_circuit

    c = parse_circuit(result.settings["circuit"])
    composite = result.settings.get("resistance")
    names = [n for n, u in zip(c.param_names, c.param_units, strict=True) if u == "Ohm"]
    roles = KNOWN_ROLES.get((c.string, composite), {})
    header = ["spectrum", "T"]
    for n in names:
        role = roles.get(n)
        label = f"{role} ({n})" if role else n
        header.append(label + (" → σ" if n == composite else ""))
    header.insert(1, "verdict")
    header.append("σ (S/cm)")
    rows, classes = [], []
    recs = result.records[result.records["kind"] == "ionic"]
    outlier = result.outlier_probability()
    for r in recs.itertuples():
        css, verdict = _verdict_cell(r, outlier)
        post = result.posterior(r.id)
        cells = [
            _interval_cell(post[n].values, "Ω") if post is not None and n in post else "–"
            for n in names
        ]
        sigma = _sci(10**r.log10_sigma) if math.isfinite(r.log10_sigma) else "–"
        rows.append([_e(r.id), verdict, f"{r.temperature_K - ZERO_C_K:.0f} °C", *cells, sigma])
        classes.append({"bad": "failed", "warn": "flagged"}.get(css, ""))
    return _table(header, rows, left=2, classes=classes)


def _verdict_cell(row, outlier: dict[str, float]) -> tuple[str, str]:
    """(css class, HTML): the verdict pill with its reasons below it."""
    css, label, reasons = record_verdict(row, outlier)
    note = f'<br><span class="note">{_e(reasons)}</span>' if reasons else ""
    return css, f'<span class="pill {css}">{_e(label)}</span>{note}'


def _dc_table(result) -> str:
    """One row per DC record: R (Ω) and V0 (mV) with 90 % intervals, σ_el and the verdict."""
    rows, classes = [], []
    recs = result.records[result.records["kind"] == "electronic"]
    outlier = result.outlier_probability()
    for r in recs.itertuples():
        css, verdict = _verdict_cell(r, outlier)
        post = result.posterior(r.id)
        has = post is not None and "R_ohm" in post
        rows.append(
            [_e(r.id), verdict, f"{r.temperature_K - ZERO_C_K:.0f} °C",
             _interval_cell(post["R_ohm"].values, "Ω") if has else "–",
             _interval_cell(post["V0_V"].values, "V") if has else "–",
             _sci(10**r.log10_sigma) if math.isfinite(r.log10_sigma) else "–"]
        )  # fmt: skip
        classes.append({"bad": "failed", "warn": "flagged"}.get(css, ""))
    header = ["DC record", "verdict", "T", "R (contacts incl.)", "V0", "σ_el (S/cm)"]
    return _table(header, rows, left=2, classes=classes)


def _records_table(result) -> str:
    """Per record: σ, the diagnostics and the verdict of :meth:`StudyResult.verdict_table`."""
    rows, classes = [], []
    outlier = result.outlier_probability()
    verdicts = result.verdict_table().set_index("record")
    for r in result.records.itertuples():
        v = verdicts.loc[r.id]
        p_out = outlier.get(r.id)
        reasons = list(v["reasons"])
        if p_out is not None and p_out > 0.5:
            reasons.append(f"set aside as an outlier by the Arrhenius layer (P = {p_out:.2f})")
        classes.append({"excluded": "failed", "warning": "flagged"}.get(v["verdict"], ""))
        kk = {True: "pass", False: "fail"}.get(r.kk_passed, "–")
        rows.append(
            [
                _e(r.id),
                r.kind,
                f"{r.temperature_K - ZERO_C_K:.0f} °C",
                _num(r.log10_sigma, ".3f"),
                _num(r.log10_sigma_sd, ".4f"),
                _num(v["max_rhat"], ".3f"),
                _num(v["min_ess_bulk"], ".0f"),
                _num(v["min_ess_tail"], ".0f"),
                str(int(v["divergences"])) if r.status != "failed" else "–",
                _num(v["bfmi"], ".2f"),
                kk,
                _num(p_out, ".2f") if p_out is not None else "–",
                f'<span class="pill {VERDICT_PILL[v["verdict"]]}">{_e(v["verdict"])}</span>',
                f'<span class="note">{_e("; ".join(reasons))}</span>',
            ]
        )
    return _table(
        [
            "record",
            "kind",
            "T",
            "log10 σ",
            "sd (fit)",
            "r̂",
            "ESS bulk",
            "ESS tail",
            "div.",
            "E-BFMI",
            "KK",
            "P(outlier)",
            "verdict",
            "reasons",
        ],
        rows,
        left=1,
        classes=classes,
    )


def _simulated_banner(result) -> str:
    if not is_simulated(result):
        return ""
    s = result.settings
    made_by = f" ({_e(s['generator'])}, seed {_e(s.get('simulation_seed', '?'))})"
    return (
        '<p class="banner sim"><b>Simulated data</b>: this study was simulated by sigmalab\'s '
        f"virtual lab{made_by if s.get('generator') else ''}; no cell was measured. Results are "
        "checked against the simulation's truth (truth.json).</p>"
    )


def _failures_banner(result) -> str:
    failed = result.failures
    if failed.empty:
        return ""
    items = "".join(
        f"<li><code>{_e(f.file)}</code>: {_e(f.reason)}</li>" for f in failed.itertuples()
    )
    opened = " open" if len(failed) <= 6 else ""
    return (
        f'<details class="banner bad"{opened}><summary><b>{len(failed)} record(s) failed or '
        "did not converge and were left out of the Arrhenius layer</b> (details)</summary>"
        f"<ul>{items}</ul></details>"
    )


def _warnings_banner(result) -> str:
    lines = result.temperature_warnings()
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f'<div class="banner warn"><b>Extrapolation</b><ul>{items}</ul></div>'


def render_report(result) -> str:
    """The report of ``result`` as one HTML string."""
    s = result.settings
    temps = s.get("temperatures_C", [30.0]) or [30.0]
    t_main = float(temps[0])
    versions = s.get("versions", {})
    joint = s.get("joint", False)
    model = (
        "joint (spectra and Arrhenius layer in one model, ionic)"
        if joint
        else "two-stage (per-record posteriors, then the Arrhenius layer)"
    )
    form = s.get("arrhenius_form", "sigma")
    parts = [
        f"<h1>{_e(result.study_name)}: conductivities and activation energies</h1>",
        f'<p class="sub">{_e(s.get("date", ""))} · {_e(s.get("kind", "").replace("_", " "))}'
        f" study · stage-1 method <b>{_e(s.get('method', ''))}</b>"
        f" · {model} · Arrhenius form <b>{_e(FORM_LABEL.get(form, form))}</b>"
        f" · seed {s.get('seed', 0)}</p>",
        _simulated_banner(result),
        f"<p>{_status_pill(result)}</p>",
        _failures_banner(result),
        _warnings_banner(result),
    ]
    d = result.diagnostics()
    n_ok = d["fits"]["n"]
    cards = [
        ("records used", f"{n_ok} / {len(result.records)}"),
        ("records ok", f"{d['fits']['n_ok']} / {len(result.records)}"),
        ("Arrhenius max r̂", _num(d["max_rhat"])),
        ("Arrhenius min ESS", _num(d["min_ess_bulk"], ".0f")),
        ("KK-flagged spectra", str(len(d["kk_failed"]))),
        ("analysis time", f"{result.timing_s.get('total', float('nan')):.0f} s"),
    ]
    parts.append(
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
            for k, v in cards
        )
        + "</div>"
    )
    if result.kinds:
        parts.append(f"<h2>Conductivity at {t_main:g} °C</h2>")
        parts.append(
            _figure(
                headline_figure(result, t_main),
                f"Posterior of the recipe-level σ at {t_main:g} °C (violin), median "
                f"(dot) and 90 % interval (bar); ★ {reference_label(result)}.",
            )
        )
        for t in temps:
            parts.append(f"<h3>σ at {t:g} °C and activation energies</h3>")
            parts.append(_sigma_table(result, t))
        parts.append(
            f'<p class="note">Activation energies are those of the {_e(FORM_LABEL[form])} '
            "law (in the σ·T form Ea is higher by about k_B·T than in the σ form). "
            f"{PRIOR_PILL}: the interval says more about the prior than about the data: its "
            "posterior sd exceeds half its prior sd, or most of its width is how far the "
            "recipe may lie from the cells measured while the spread of cells is itself not "
            "learned (one or two cells per recipe).</p>"
        )
        parts.append("<h2>Recipe comparisons</h2>")
        parts.append(_comparison_table(result))
        parts.append('<h2 id="arrhenius">Arrhenius plots</h2>')
        for kind in result.kinds:
            parts.append(
                _figure(
                    arrhenius_figure(result, kind),
                    f"{KIND_LABEL[kind]}: one marker per spectrum / DC record "
                    "(error bar: fit and geometry, ±1 sd), recipe-level posterior "
                    f"median and 90 % band; ★ {reference_label(result)} at 30 °C.",
                )
            )
        cells_figures = [(k, arrhenius_cells_figure(result, k)) for k in result.kinds]
        if any(src for _, src in cells_figures):
            parts.append("<h3>Per cell</h3>")
        for kind, src in cells_figures:
            if src:
                parts.append(
                    _figure(
                        src,
                        f"{KIND_LABEL[kind]} per cell, as deviations from the recipe's median "
                        "line (dashed): each cell's spectra / records (±1 sd) and its own "
                        "posterior line (median, 90 % band).",
                    )
                )
    else:
        parts.append('<div class="banner bad">No conductivity could be estimated.</div>')
    recipes_with_curves = list(dict.fromkeys(c.attrs.get("recipe") for c in result.curves.values()))
    spectra_recipes = [r for r in recipes_with_curves if _cell_records(result, r, spectra=True)]
    if spectra_recipes:
        parts.append('<h2 id="impedance-fits">Impedance fits</h2>')
        parts.append(
            '<p class="note">One representative cell per recipe at its lowest, middle '
            "and highest temperature: data (circles), fitted median (line) and the 90 % "
            "band of the model curve. Nyquist axes have equal scales, so arcs look like the "
            "semicircles they are; the dashed box is enlarged below it where the high-frequency "
            "arcs are small. Residuals are (data − fit)/|Z|, of the median fit and of the "
            "Lin-KK fit the Kramers–Kronig check uses (its pass band dotted).</p>"
        )
        for recipe in spectra_recipes:
            parts.append(f"<h3>{_e(recipe)}</h3>")
            src = nyquist_figure(result, recipe)
            if src:
                parts.append(_figure(src, f"{_e(recipe)}: Nyquist plots of one cell."))
            src = bode_figure(result, recipe)
            if src:
                parts.append(_figure(src, f"{_e(recipe)}: Bode plots and residuals."))
        parts.append('<h3 id="per-spectrum">Per spectrum: fitted resistances</h3>')
        parts.append(
            '<p class="note">Posterior median and 90 % interval of every resistance of '
            f"<code>{_e(result.settings.get('circuit', ''))}</code>; σ comes from the one "
            "marked → σ.</p>"
        )
        parts.append(_parameters_table(result))
    dc_recipes = [r for r in recipes_with_curves if _cell_records(result, r, spectra=False)]
    if dc_recipes:
        parts.append('<h2 id="dc-fits">DC polarization fits</h2>')
        for recipe in dc_recipes:
            src = iv_figure(result, recipe)
            if src:
                parts.append(
                    _figure(src, f"{_e(recipe)}: steady-state current per bias (±1 se) and the "
                            "fitted line I = (V − V0)/R, median and 90 % band.")
                )  # fmt: skip
        parts.append("<h3>Per DC record</h3>")
        parts.append(_dc_table(result))
    parts.append("<h2>Rate capability — model prediction</h2>")
    note = result.rate_capability_note()
    if note:
        parts.append(f'<p class="note">{_e(note)}.</p>')
    else:
        parts.append(
            '<p class="note"><b>Model prediction, not a measurement:</b> the σ_ion posterior '
            "at 60 °C pushed through the physics.md §2.7 proxy u(C) = (tanh Λ/Λ)/(1 + C/C0), "
            "Λ = jL/(2σΔV), for a 60 µm, 2.4 mAh/cm² electrode; retention relative to C/10. "
            "Its interval holds the σ_ion posterior and the proxy's own error (sd "
            f"{PROXY_ERROR_LOGIT_SD:g} on the logit of the retention).</p>"
        )
        parts.append(_rate_table(result))
    parts.append('<h2 id="diagnostics">Diagnostics</h2>')
    if result.arrhenius:
        parts.append("<h3>Arrhenius layer</h3>")
        parts.append(_arrhenius_diag_table(result))
    parts.append("<h3>Per record (stage 1)</h3>")
    parts.append(
        '<p class="note">r̂, ESS and E-BFMI are those of each record\'s own fit (NUTS; '
        '"–" for least squares). A record is <b>ok</b> only when r̂ ≤ '
        f"{dg.RHAT_MAX}, ESS bulk and tail ≥ {dg.ESS_MIN}, no divergent transition, "
        f"E-BFMI ≥ {dg.BFMI_MIN}, no parameter against a bound of its support, its "
        "Kramers–Kronig check passed and its least-squares start is not poor; otherwise a "
        "<b>warning</b> (kept in the Arrhenius layer) or <b>excluded</b> (its file or fit "
        f"failed, or its chains disagree, r̂ > {dg.RHAT_EXCLUDE}). The badge above is ok when "
        f"every layer is ok and at least {dg.RECORDS_OK_MIN:.0%} of the records are.</p>"
    )
    parts.append(_records_table(result))
    parts.append("<h2>Provenance</h2>")
    parts.append(f"<p>Command:</p><pre>{_e(s.get('command') or '(Python API)')}</pre>")
    settings = {k: v for k, v in s.items() if k not in ("versions", "command")}
    parts.append(f"<p>Settings:</p><pre>{_e(json.dumps(settings, indent=1, default=str))}</pre>")
    parts.append(
        "<p>Versions: " + ", ".join(f"{_e(k)} {_e(v)}" for k, v in versions.items()) + "</p>"
    )
    timing = ", ".join(f"{_e(k)} {v:.1f} s" for k, v in result.timing_s.items())
    parts.append(
        f'<p class="note">Timing: {timing}. Study folder: <code>{_e(result.study_path)}</code>.</p>'
    )
    if result.paper:
        parts.append(
            f'<p class="note">Paper values: {_e(result.paper.get("source", ""))} '
            "(paper_values.toml).</p>"
        )
    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(result.study_name)} — sigmalab report</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n"
    )
