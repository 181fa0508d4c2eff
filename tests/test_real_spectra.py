"""Real spectra from another lab: the s04147 pellet series (EISFitpython, MIT; see the README in
shared/data/real-spectra). One pellet, 120–200 °C, circuit p(R1,CPE1)-p(R2,CPE2)-CPE3, with
independently published fits (Adediwura et al., J. Mater. Chem. A 12 (2024) 15847)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.analysis import analyze_study
from inference.diagnostics import ESS_MIN, RHAT_MAX
from inference.fit import fit_spectrum
from inference.lsq import fit_lsq
from inference.readers import read_spectrum
from tests.conftest import REPO

pytestmark = pytest.mark.slow

S04147 = next(
    (
        p / "shared/data/real-spectra/eisfitpython-s04147"
        for p in (REPO.parent, REPO.parent.parent, Path("/work"))
        if (p / "shared/data/real-spectra/eisfitpython-s04147").is_dir()
    ),
    None,
)
CIRCUIT = "p(R1,CPE1)-p(R2,CPE2)-CPE3"
#: The authors' Arrhenius report (σ·T form, 140–200 °C): bulk Ea 0.5869 ± 0.0163 eV.
PUBLISHED_EA_EV, PUBLISHED_EA_SD = 0.5869, 0.0163
DIAMETER_CM, THICKNESS_CM = 0.8, 0.21
SETTINGS = {"draws": 1000, "tune": 1000, "chains": 2}

needs_data = pytest.mark.skipif(S04147 is None, reason="shared real spectra not available")


def _read(temperature_C: int):
    return read_spectrum(
        S04147 / f"s04147-{temperature_C}deg.txt",
        format="csv",
        columns={"frequency": 0, "z_real": 1, "z_imag": 2},
    )


def write_study(out: Path) -> Path:
    """The 140–200 °C spectra as a solid-electrolyte study in σ·T form in ``out`` (files as CSV
    with headers the reader knows; values unchanged)."""
    area = np.pi * (DIAMETER_CM / 2) ** 2
    lines = [
        "[study]",
        'name = "s04147"',
        'kind = "solid_electrolyte"',
        f'circuit = "{CIRCUIT}"',
        'composite_resistance = "R1"',
        'arrhenius = "sigmaT"',
        "",
        "[recipes.s04147]",
        'material = "Li-ion conducting oxide pellet"',
        "",
        "[[cells]]",
        'id = "s04147"',
        'recipe = "s04147"',
        'type = "ion"',
        f"thickness_um = {THICKNESS_CM * 1e4}",
        "thickness_sd_um = 0.0",
        f"area_cm2 = {area:.6f}",
        "area_sd_cm2 = 0.0",
    ]
    for t in range(140, 201, 10):
        ds = _read(t)
        path = out / f"s04147-{t}C.csv"
        rows = zip(ds["frequency"].values, ds["z_real"].values, -ds["z_imag"].values, strict=True)
        path.write_text(
            "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n"
            + "".join(f"{f:.9g},{r:.9g},{i:.9g}\n" for f, r, i in rows)
        )
        lines += ["", "[[files]]", f'path = "{path.name}"', 'cell = "s04147"']
        lines.append(f"temperature_C = {t}.0")
    (out / "manifest.toml").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("s04147"))


@pytest.fixture(scope="module")
def result(study_dir):
    return analyze_study(
        study_dir,
        seed=0,
        fit_draws=SETTINGS["draws"],
        fit_tune=SETTINGS["tune"],
        fit_chains=SETTINGS["chains"],
        draws=1000,
        tune=1000,
        chains=4,
    )


@needs_data
def test_120C_electrode_cpe_below_one_half_is_inside_the_support():
    """At 120 °C the blocking-electrode CPE fits at α ≈ 0.43: no posterior piles against a bound,
    and the medians agree with the least-squares optimum."""
    spectrum = _read(120)
    start = fit_lsq(spectrum, CIRCUIT)
    assert start.params["CPE3_1"] < 0.5 and not start.at_bound
    fit = fit_spectrum(spectrum, CIRCUIT, lsq=start, seed=1, **SETTINGS)
    d = fit.diagnostics
    assert d["max_rhat"] <= RHAT_MAX and min(d["min_ess_bulk"], d["min_ess_tail"]) >= ESS_MIN, d
    assert d["divergences"] == 0 and d["at_bound"] == []
    # Nothing moved to compensate a bound (the old support (0.5, 1) shifted R2 by −24 %): every
    # median within 0.3 posterior sd of the optimum, within 2 % where the data pin the
    # parameter to better than 10 % (all but the bulk arc's R1 and Q1, half out of the window).
    for name, value in start.params.items():
        draws = fit.posterior[name].values
        median = float(np.median(draws))
        assert abs(median - value) < 0.3 * draws.std(), name
        if start.stderr[name] < 0.1 * value:
            assert median == pytest.approx(value, rel=0.02), name


@needs_data
def test_every_spectrum_converges_and_none_is_at_a_bound(result):
    table = result.verdict_table()
    assert len(table) == 7
    assert (table["max_rhat"] <= RHAT_MAX).all(), table[["record", "max_rhat"]]
    assert (table[["min_ess_bulk", "min_ess_tail"]].min(axis=1) >= ESS_MIN).all()
    # NUTS reruns a spectrum with divergent transitions at target acceptance 0.99, which leaves
    # none in nearly every run (here 0 in 6 seeds of the 200 °C spectrum, 1 in a CI run): at
    # most one left in the 7 spectra, and a spectrum that keeps one is not labelled ok.
    assert table["divergences"].sum() <= 1, table[["record", "divergences"]]
    divergent = table[table["divergences"] > 0]
    assert (divergent["verdict"] == "warning").all(), divergent[["record", "verdict", "reasons"]]
    assert all("divergent" in " ".join(r) for r in divergent["reasons"])
    assert table["at_bound"].map(len).sum() == 0
    # the published bulk σ(140 °C) = 2.857e-6 S/cm ± 8.8 % (σ = L/(R1·A))
    rec = result.records.set_index("id").loc["s04147-140C"]
    assert 10 ** rec["log10_sigma"] == pytest.approx(2.857e-6, rel=0.02)
    assert rec["log10_sigma_sd"] * np.log(10) == pytest.approx(0.088, rel=0.25)


@needs_data
def test_solid_electrolyte_analysis_in_sigma_T_form(result):
    assert result.settings["kind"] == "solid_electrolyte"
    assert result.settings["arrhenius_form"] == "sigmaT"
    layer = result.arrhenius["ionic"].attrs
    assert layer["divergences"] == 0 and layer["max_rhat"] <= RHAT_MAX, layer["worst_rhat_var"]
    ea = result.activation_energy_table().iloc[0]
    assert ea["form"] == "sigmaT"
    # consistent with the authors' 0.587 ± 0.016 eV: inside our 90 % interval, and ours is
    # no narrower than theirs (one cell: the spread of cells' Ea is the prior's)
    assert ea["ci90_lo_eV"] <= PUBLISHED_EA_EV <= ea["ci90_hi_eV"], ea
    assert ea["ci90_hi_eV"] - ea["ci90_lo_eV"] >= 2 * 1.645 * PUBLISHED_EA_SD
    assert result.rate_capability_table().empty
    assert "solid_electrolyte" in result.rate_capability_note()
    sigma = result.conductivity_table(30.0)
    assert sigma["prior_dominated"].all()  # one cell: the recipe level is the cell-spread prior
