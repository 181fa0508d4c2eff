"""compare_circuits: PSIS-LOO picks the circuit that made a spectrum and says when it cannot."""

from __future__ import annotations

import numpy as np
import pytest

from inference.circuits import simulate_spectrum
from inference.compare import compare_circuits
from inference.errors import InputError

pytestmark = pytest.mark.slow

ONE, TWO = "R0-p(R1,CPE1)", "R0-p(R1,CPE1)-p(R2,CPE2)"
FREQ_HZ = np.geomspace(1e6, 0.1, 50)
SETTINGS = {"draws": 500, "tune": 500, "chains": 2, "retry": False}


def _two_arcs(f_apex_2: float, seed: int):
    truth = {"R0": 5.0, "R1": 100.0, "CPE1_1": 0.9, "R2": 150.0, "CPE2_1": 0.9}
    truth["CPE1_0"] = 1 / (100.0 * (2 * np.pi * 3e4) ** 0.9)
    truth["CPE2_0"] = 1 / (150.0 * (2 * np.pi * f_apex_2) ** 0.9)
    return simulate_spectrum(TWO, truth, FREQ_HZ, noise_rel=0.01, seed=seed)


def test_two_separated_arcs_are_preferred_over_one(tmp_path):
    """Through the CLI: ``sigmalab fit FILE --circuit A --circuit B`` ranks them by PSIS-LOO."""
    import pandas as pd
    import typer
    from typer.testing import CliRunner

    from service.commands.fit import fit

    ds = _two_arcs(30.0, seed=1)
    path = tmp_path / "cell.csv"
    rows = zip(ds["frequency"].values, ds["z_real"].values, -ds["z_imag"].values, strict=True)
    path.write_text(
        "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    )
    app = typer.Typer()
    app.command()(fit)
    args = [str(path), "--circuit", ONE, "--circuit", TWO, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--draws", "500", "--tune", "500"])
    assert result.exit_code == 0, result.output
    assert f"{TWO}ispreferred" in "".join(result.output.split())  # rich wraps long lines
    table = pd.read_csv(tmp_path / "cell_compare.csv", index_col="circuit")
    assert table.loc[TWO, "rank"] == 0 and bool(table.loc[TWO, "indistinguishable"])
    assert table.loc[ONE, "elpd_diff"] > 4 * table.loc[ONE, "dse"]  # far outside its SE
    assert not bool(table.loc[ONE, "indistinguishable"])
    assert (tmp_path / "cell.nc").is_file()  # the preferred circuit's fit


def test_arcs_whose_time_constants_differ_by_less_than_1_5_are_indistinguishable():
    cmp = compare_circuits(_two_arcs(3e4 / 1.3, seed=2), [ONE, TWO], seed=0, **SETTINGS)
    assert sorted(cmp.indistinguishable) == sorted([ONE, TWO])
    assert cmp.preferred == ONE  # the simpler of two circuits the data cannot tell apart
    assert "indistinguishable" in cmp.message


def test_needs_two_distinct_circuits():
    with pytest.raises(InputError, match="two or more distinct circuits"):
        compare_circuits(_two_arcs(30.0, seed=1), [ONE, "R0-p(R1, CPE1)"])
