"""Figures of fit results (matplotlib): spectrum fits and DC fits.

Model bands are computed on a dense frequency grid from thinned posterior draws; the band is
the equal-tailed 90 % interval of the *model* curve (without measurement noise).
"""

from __future__ import annotations

import numpy as np

from inference.circuits import parse_circuit

BAND = 0.90
N_BAND_DRAWS = 200


def _figure(nrows, ncols, size):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, layout="constrained")


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _draw_index(n: int) -> np.ndarray:
    """At most ``N_BAND_DRAWS`` evenly spaced indices out of ``n`` posterior draws."""
    return np.unique(np.linspace(0, n - 1, min(n, N_BAND_DRAWS)).astype(int))


def _band(ax, x, draws, lw: float = 1.5) -> None:
    """The 90 % band and the median of curve draws (draws × len(x)), in the fit colour."""
    lo, hi = (1 - BAND) / 2 * 100, (1 + BAND) / 2 * 100
    ax.fill_between(
        x,
        np.percentile(draws, lo, axis=0),
        np.percentile(draws, hi, axis=0),
        color="C1",
        alpha=0.3,
        label=f"{BAND:.0%} band",
    )
    ax.plot(x, np.median(draws, axis=0), color="C1", lw=lw, label="median fit")


def _curve_draws(c, posterior, f_dense):
    flat = posterior.stack(sample=("chain", "draw"))
    idx = _draw_index(flat.sizes["sample"])
    params = {name: flat[name].values[idx][:, None] for name in c.param_names}
    with np.errstate(all="ignore"):
        re, im = c.evaluate(params, f_dense)
    return np.asarray(re) + 1j * np.asarray(im)


def most_correlated_pairs(posterior, names, n_pairs: int = 2) -> list[tuple[str, str, float]]:
    """The ``n_pairs`` parameter pairs with the largest |correlation| of their logs."""
    x = np.column_stack([np.log(np.abs(posterior[n].values.ravel()) + 1e-300) for n in names])
    keep = np.std(x, axis=0) > 0
    names = [n for n, k in zip(names, keep, strict=True) if k]
    if len(names) < 2:
        return []
    corr = np.corrcoef(x[:, keep], rowvar=False)
    pairs = [
        (names[i], names[j], float(corr[i, j]))
        for i in range(len(names))
        for j in range(i + 1, len(names))
    ]
    return sorted(pairs, key=lambda p: -abs(p[2]))[:n_pairs]


def plot_spectrum_fit(fit, path=None, n_pairs: int = 2):
    """Nyquist, Bode |Z| and phase (data, median fit, 90 % band), KK residuals, pair plots."""
    c = parse_circuit(fit.circuit)
    f = fit.observed["frequency"].values
    z = fit.observed["z_real"].values + 1j * fit.observed["z_imag"].values
    f_dense = np.logspace(np.log10(f.min()), np.log10(f.max()), 200)
    curves = _curve_draws(c, fit.posterior, f_dense)
    median = np.median(curves.real, axis=0) + 1j * np.median(curves.imag, axis=0)

    fig, axes = _figure(2, 3, (15, 8.5))
    ax = axes[0, 0]
    for curve in curves[:: max(1, len(curves) // 40)]:
        ax.plot(curve.real, -curve.imag, color="C1", alpha=0.08, lw=1)
    ax.plot(median.real, -median.imag, color="C1", lw=2, label="median fit")
    ax.plot(z.real, -z.imag, "o", ms=3.5, color="C0", label="data")
    ax.set(xlabel="Re Z / Ω", ylabel="−Im Z / Ω", title=f"Nyquist — {fit.circuit}")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend()

    modulus = np.abs(curves)
    phase = np.degrees(np.angle(curves))
    for ax, data, model, label in (
        (axes[0, 1], np.abs(z), modulus, "|Z| / Ω"),
        (axes[0, 2], np.degrees(np.angle(z)), phase, "phase / °"),
    ):
        _band(ax, f_dense, model, lw=2)
        ax.plot(f, data, "o", ms=3.5, color="C0", label="data")
        ax.set(xscale="log", xlabel="f / Hz", ylabel=label)
        if label.startswith("|Z|"):
            ax.set_yscale("log")
        ax.legend()
    axes[0, 1].set_title("Bode")

    ax = axes[1, 0]
    if fit.kk is not None:
        ax.plot(fit.kk.frequency_Hz, 100 * fit.kk.residuals_real, "o-", ms=3, label="Re")
        ax.plot(fit.kk.frequency_Hz, 100 * fit.kk.residuals_imag, "s-", ms=3, label="Im")
        for sign in (-1, 1):
            ax.axhline(sign * 100 * fit.kk.threshold, color="grey", ls="--", lw=1)
        verdict = "pass" if fit.kk.passed else "FAIL"
        ax.set_title(f"Kramers–Kronig residuals ({verdict}, M={fit.kk.M})")
        ax.legend()
    ax.set(xscale="log", xlabel="f / Hz", ylabel="(Z − Z_KK)/|Z| / %")

    pairs = most_correlated_pairs(fit.posterior, c.param_names, n_pairs)
    for ax, pair in zip(axes[1, 1:], pairs + [None] * 2, strict=False):
        if pair is None:
            ax.axis("off")
            continue
        a, b, r = pair
        x, y = fit.posterior[a].values.ravel(), fit.posterior[b].values.ravel()
        ax.plot(x, y, ".", ms=2, alpha=0.3)
        ax.set(xlabel=a, ylabel=b, title=f"{a} vs {b} (r = {r:.2f})")
        # Log axes where draws span a decade; within a narrow range log ticks overprint.
        for axis, values in (("x", x), ("y", y)):
            if values.max() > 10 * values.min():
                ax.set(**{f"{axis}scale": "log"})
    fig.suptitle(_title(fit))
    return _save(fig, path)


def _title(fit) -> str:
    d = fit.diagnostics
    source = fit.observed.attrs.get("source_file", "")
    if fit.method != "nuts":
        return f"{source} — least squares (Laplace draws)"
    return (
        f"{source} — r̂ {d['max_rhat']:.3f}, ESS bulk {d['min_ess_bulk']:.0f}, "
        f"{d['divergences']} divergences"
    )


def plot_dc_fit(fit, path=None):
    """DC fit: current vs time with plateaus marked, and I_ss vs V with the fitted line."""
    fig, axes = _figure(1, 2, (12, 4.5))
    rec = fit.record
    ax = axes[0]
    ax.plot(rec["time_s"].values, rec["current_A"].values, lw=1, color="C0", label="current")
    for step in fit.steps.itertuples():
        ax.axvspan(
            step.plateau_start_s,
            step.plateau_end_s,
            color="C2" if step.settled else "C3",
            alpha=0.2,
        )
    ax.set(xlabel="t / s", ylabel="I / A", title="record (green: plateau, red: not settled)")
    ax = axes[1]
    v = fit.steps["voltage_V"].values
    i = fit.steps["current_A"].values
    grid = np.linspace(min(v.min(), 0), max(v.max(), 0), 100)
    r = fit.posterior["R_ohm"].values.ravel()
    v0 = fit.posterior["V0_V"].values.ravel()
    sel = _draw_index(r.size)
    _band(ax, grid, (grid[None, :] - v0[sel, None]) / r[sel, None])
    lo, hi = (1 - BAND) / 2 * 100, (1 + BAND) / 2 * 100
    ax.errorbar(
        v, i, yerr=fit.steps["current_sd_A"].values, fmt="o", color="C0", label="steady state"
    )
    ax.set(
        xlabel="V / V",
        ylabel="I_ss / A",
        title=f"R = {np.median(r):.4g} Ω [{np.percentile(r, lo):.4g}, {np.percentile(r, hi):.4g}]",
    )
    ax.legend()
    return _save(fig, path)
