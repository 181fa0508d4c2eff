"""Figures of fit results (matplotlib): spectrum fits and DC fits, and the axes-level pieces
(Nyquist, Bode, residuals, I–V) that the study report composes.

Model bands are computed on a dense frequency grid from thinned posterior draws; the band is
the equal-tailed 90 % interval of the *model* curve (without measurement noise). Nyquist axes
have equal aspect (semicircles stay round) and SI-prefixed Ω ticks (``100 kΩ``) that do not
overprint; every axis names its quantity and unit.
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


def ohm_axis(axis, nbins: int = 5) -> None:
    """Ticks of an impedance axis: at most ``nbins`` intervals, labels like ``250 kΩ``."""
    from matplotlib.ticker import EngFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=nbins))
    axis.set_major_formatter(EngFormatter(unit="Ω", sep=" "))


def frequency_axis(ax) -> None:
    """A log frequency x axis, labelled ``f (Hz)``, decades only (no minor ticks: over 6–8
    decades they add nothing but drawing time)."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("f (Hz)")


def quantile_curves(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise 5 %, 50 % and 95 % curves of complex curve draws (draws × f), Re and Im apart."""
    q = [(1 - BAND) / 2, 0.5, (1 + BAND) / 2]
    re, im = np.quantile(curves.real, q, axis=0), np.quantile(curves.imag, q, axis=0)
    return tuple(re[i] + 1j * im[i] for i in range(3))


def nyquist(ax, z, curves=None, *, color="C1", label: bool = True, limits=None) -> None:
    """Data (circles), median fit (line) and 90 % band of −Im Z vs Re Z, equal aspect.

    ``curves``: complex model draws (draws × f) or None; ``limits``: (x0, x1, y0, y1) in Ω for
    a zoom (the box then keeps the aspect), else the axes fit the data.
    """
    if curves is not None:
        lo, med, hi = quantile_curves(curves)
        band_x = np.concatenate([lo.real, hi.real[::-1]])
        band_y = np.concatenate([-lo.imag, -hi.imag[::-1]])
        ax.fill(band_x, band_y, color=color, alpha=0.25, lw=0, label="90 % band" if label else None)
        ax.plot(med.real, -med.imag, color=color, lw=1.6, label="median fit" if label else None)
    ax.plot(z.real, -z.imag, "o", ms=3, mfc="white", mec="#333", mew=0.8,
            label="data" if label else None)  # fmt: skip
    if limits is None:
        limits = nyquist_limits(z if curves is None else np.concatenate([z, np.ravel(curves)]))
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("Re Z (Ω)")
    ax.set_ylabel("−Im Z (Ω)")
    ohm_axis(ax.xaxis)
    ohm_axis(ax.yaxis, nbins=4)


def nyquist_limits(z) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in Ω around the points ``z`` with the origin's axes in view, 4 % padded.

    With equal aspect the axes box takes the data's shape (a row of arcs is wide and low)
    instead of padding the short direction with empty space.
    """
    z = np.asarray(z)
    z = z[np.isfinite(z)]
    x0, x1 = min(float(z.real.min()), 0.0), float(z.real.max())
    y0, y1 = min(float((-z.imag).min()), 0.0), max(float((-z.imag).max()), 0.0)
    pad = 0.04 * max(x1 - x0, y1 - y0, 1e-12)
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def bode(ax_modulus, ax_phase, f, z, f_fit=None, curves=None, *, color="C1", label=None) -> None:
    """|Z| (log) and phase vs f (log): data points, median fit and 90 % band."""
    for ax, data, model in (
        (ax_modulus, np.abs(z), None if curves is None else np.abs(curves)),
        (
            ax_phase,
            np.degrees(np.angle(z)),
            None if curves is None else np.degrees(np.angle(curves)),
        ),
    ):
        if model is not None:
            lo, med, hi = np.quantile(model, [(1 - BAND) / 2, 0.5, (1 + BAND) / 2], axis=0)
            ax.fill_between(f_fit, lo, hi, color=color, alpha=0.25, lw=0)
            ax.plot(f_fit, med, color=color, lw=1.4, label=label)
        ax.plot(f, data, "o", ms=2.6, mfc="white", mec=color, mew=0.8)
        frequency_axis(ax)
    ax_modulus.set_yscale("log")
    ax_modulus.set_ylabel("|Z| (Ω)")
    ax_phase.set_ylabel("phase of Z (°)")


def residuals(ax, f, z, z_model, *, color="C1", label=None, threshold=None) -> None:
    """(Z − Z_model)/|Z| in % vs f: Re (filled circles) and Im (open squares), joined by thin
    lines; ``threshold`` (a fraction of |Z|, e.g. the Kramers–Kronig one) drawn dotted."""
    d = 100 * (z - z_model) / np.abs(z)
    ax.plot(f, d.real, "o-", ms=2.6, lw=0.5, color=color, label=label)
    ax.plot(f, d.imag, "s-", ms=2.6, lw=0.5, mfc="white", mec=color, color=color)
    if threshold is not None:
        for sign in (-1, 1):
            ax.axhline(sign * 100 * threshold, color="grey", ls=":", lw=1)
    ax.axhline(0, color="#999", lw=0.8)
    frequency_axis(ax)
    ax.set_ylabel("residual / |Z| (%)")


def iv(ax, voltage_V, current_A, current_sd_A, r_ohm, v0_V, *, color="C1", label=None) -> None:
    """Steady-state I vs V (points, ±1 se) and the fitted line I = (V − V0)/R: median, 90 % band."""
    v = np.asarray(voltage_V, float)
    grid = np.linspace(min(v.min(), 0), max(v.max(), 0), 60)
    r, v0 = np.asarray(r_ohm).ravel(), np.asarray(v0_V).ravel()
    sel = _draw_index(r.size)
    lines = 1e3 * (grid[None, :] - v0[sel, None]) / r[sel, None]
    lo, med, hi = np.quantile(lines, [(1 - BAND) / 2, 0.5, (1 + BAND) / 2], axis=0)
    ax.fill_between(1e3 * grid, lo, hi, color=color, alpha=0.25, lw=0)
    ax.plot(1e3 * grid, med, color=color, lw=1.4, label=label)
    ax.errorbar(1e3 * v, 1e3 * np.asarray(current_A), yerr=1e3 * np.asarray(current_sd_A),
                fmt="o", ms=3.5, color=color, mfc="white")  # fmt: skip
    ax.set_xlabel("bias V (mV)")
    ax.set_ylabel("steady-state I (mA)")


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
    curves = fit.predict(f_dense, draws=True)

    fig, axes = _figure(2, 3, (15, 8.5))
    ax = axes[0, 0]
    nyquist(ax, z, curves)
    ax.set_title(f"Nyquist — {fit.circuit}")
    ax.legend(frameon=False)

    bode(axes[0, 1], axes[0, 2], f, z, f_dense, curves)
    axes[0, 1].set_title("Bode")

    ax = axes[1, 0]
    residuals(ax, f, z, fit.predict(f), label="median fit (● Re, □ Im)", color="C1")
    if fit.kk is not None:
        verdict = "pass" if fit.kk.passed else "FAIL"
        label = f"Lin-KK, {verdict} (M={fit.kk.M})"
        residuals(ax, f, z, fit.kk.z_fit, color="#777", label=label, threshold=fit.kk.threshold)
        ax.set_title("Residuals; dotted: Kramers–Kronig pass band")
    ax.legend(frameon=False)

    pairs = most_correlated_pairs(fit.posterior, c.param_names, n_pairs)
    for ax, pair in zip(axes[1, 1:], pairs + [None] * 2, strict=False):
        if pair is None:
            ax.axis("off")
            continue
        a, b, r = pair
        x, y = fit.posterior[a].values.ravel(), fit.posterior[b].values.ravel()
        ax.plot(x, y, ".", ms=2, alpha=0.3)
        unit = {n: fit.posterior[n].attrs.get("units", "1") for n in (a, b)}
        ax.set(
            xlabel=f"{a} ({unit[a]})", ylabel=f"{b} ({unit[b]})", title=f"{a} vs {b} (r = {r:.2f})"
        )
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
    ax.set(xlabel="t (s)", ylabel="I (A)", title="record (green: plateau, red: not settled)")
    ax = axes[1]
    r = fit.posterior["R_ohm"].values.ravel()
    iv(ax, fit.steps["voltage_V"], fit.steps["current_A"], fit.steps["current_sd_A"], r,
       fit.posterior["V0_V"].values, label="median fit, 90 % band")  # fmt: skip
    lo, hi = (1 - BAND) / 2 * 100, (1 + BAND) / 2 * 100
    ax.set_title(
        f"R = {np.median(r):.4g} Ω [{np.percentile(r, lo):.4g}, {np.percentile(r, hi):.4g}]"
    )
    ax.legend(frameon=False)
    return _save(fig, path)
