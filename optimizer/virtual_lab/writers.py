"""Write simulated measurements in the formats the readers read: EC-Lab ``.mpt`` text and CSV.

The ``.mpt`` files follow a real EC-Lab ASCII export (tests/data/instrument-files/
exampleDataBioLogic.mpt): ``EC-Lab ASCII FILE``, a correct ``Nb header lines : N`` (the
column-name line is the N-th line), the technique line, a settings block, then tab-separated
columns; Latin-1 text with LF line ends, numbers as EC-Lab writes them (``6.5470886E+001``).

Everything written is a function of the inputs: dates come from the ``started`` argument (the
caller derives it from a fixed constant), never from the clock, so a seed gives identical bytes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from optimizer.virtual_lab.measure import sweep_times

EIS_COLUMNS = (
    "freq/Hz",
    "Re(Z)/Ohm",
    "-Im(Z)/Ohm",
    "|Z|/Ohm",
    "Phase(Z)/deg",
    "time/s",
    "<Ewe>/V",
    "<I>/mA",
    "cycle number",
    "Temperature/°C",
)
DC_COLUMNS = ("time/s", "control/V", "Ewe/V", "<I>/mA", "Ns")
EIS_CSV_COLUMNS = ("freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm")
DC_CSV_COLUMNS = ("time/s", "Ewe/V", "I/mA")
ENCODING = "latin-1"


def ec_float(x: float) -> str:
    """A number as EC-Lab writes it: 8 significant digits, 3-digit exponent (6.5470886E+001)."""
    mantissa, exponent = f"{x:.7E}".split("E")
    e = int(exponent)
    return f"{mantissa}E{'-' if e < 0 else '+'}{abs(e):03d}"


def _frequency_setting(f_Hz: float) -> tuple[str, str]:
    """A sweep limit as EC-Lab shows it: value and unit (``7.000``, ``MHz``)."""
    for unit, scale in (("MHz", 1e6), ("kHz", 1e3), ("Hz", 1.0)):
        if f_Hz >= scale:
            return f"{f_Hz / scale:.3f}", unit
    return f"{f_Hz * 1e3:.3f}", "mHz"


def _settings(rows: list[tuple[str, str]]) -> list[str]:
    return [f"{key:<20}{value:<20}" for key, value in rows]


def _header(technique: str, started: datetime, comment: str, area_cm2: float, settings) -> list:
    stamp = started.strftime("%m/%d/%Y %H:%M:%S")
    return [
        "EC-Lab ASCII FILE",
        None,  # "Nb header lines", filled in once the header is complete
        "",
        technique,
        "",
        "Run on channel : 1 (SN 0001)",
        "User : sigmalab virtual lab",
        "CE vs. WE compliance from -10 V to 10 V",
        "Electrode connection : standard",
        "Ewe ctrl range : min = -2.50 V, max = 2.50 V",
        "Safety Limits :",
        "\tDo not start on E overload",
        f"Acquisition started on : {stamp}",
        f"Technique started on : {stamp}",
        "Saved on :",
        "\tFile : simulated.mpr",
        "\tDirectory : sigmalab\\virtual_lab\\",
        "\tHost : 127.0.0.1",
        "Device : SP-300 (SN 0001)",
        "Address : USB",
        "EC-Lab for windows v11.18 (software)",
        "Internet server v11.18 (firmware)",
        "Command interpretor v11.16 (firmware)",
        "Electrode material : composite cathode",
        "Initial state : ",
        "Electrolyte : Li6PS5Cl",
        f"Comments : {comment}",
        f"Electrode surface area : {area_cm2:.3f} cm²",
        "Characteristic mass : 0.001 g",
        "Equivalent Weight : 0.000 g/eq.",
        "Density : 0.000 g/cm3",
        "Cycle Definition : Charge/Discharge alternance",
        *_settings(settings),
        "",
    ]


def _write_mpt(path: Path, header: list, columns, rows: list[str]) -> None:
    lines = [*header, "\t".join(columns) + "\t"]
    lines[1] = f"Nb header lines : {len(lines)}" + " " * 26
    text = "\n".join([*lines, *rows]) + "\n"
    Path(path).write_bytes(text.encode(ENCODING))


def write_eis_mpt(
    path,
    frequency_Hz,
    z_real,
    z_imag,
    *,
    temperature_C: float,
    started: datetime,
    comment: str,
    area_cm2: float,
    amplitude_mV: float = 7.0,
    points_per_decade: int = 10,
) -> None:
    """Write a PEIS spectrum (Z = z_real + j·z_imag, Ω) as an EC-Lab ``.mpt`` export."""
    f = np.asarray(frequency_Hz, dtype=float)
    zr, zi = np.asarray(z_real, dtype=float), np.asarray(z_imag, dtype=float)
    settings = [
        ("Mode", "Single sine"),
        ("E (V)", "0.0000"),
        ("vs.", "Eoc"),
        ("tE (h:m:s)", "0:00:0.0000"),
        ("record", "0"),
        ("dI", "0.000"),
        ("unit dI", "mA"),
        ("dt (s)", "0.000"),
        ("fi", _frequency_setting(f[0])[0]),
        ("unit fi", _frequency_setting(f[0])[1]),
        ("ff", _frequency_setting(f[-1])[0]),
        ("unit ff", _frequency_setting(f[-1])[1]),
        ("Nd", str(points_per_decade)),
        ("Points", "per decade"),
        ("spacing", "Logarithmic"),
        ("Va (mV)", f"{amplitude_mV:.1f}"),
        ("pw", "0.10"),
        ("Na", "3"),
        ("corr", "0"),
        ("E range min (V)", "-2.500"),
        ("E range max (V)", "2.500"),
        ("I Range", "Auto"),
        ("Bandwidth", "7"),
    ]
    header = _header(
        "Potentio Electrochemical Impedance Spectroscopy", started, comment, area_cm2, settings
    )
    modulus = np.hypot(zr, zi)
    phase = np.degrees(np.arctan2(zi, zr))
    times = sweep_times(f)
    rows = [
        "\t".join(
            [
                ec_float(f[k]),
                ec_float(zr[k]),
                ec_float(-zi[k]),
                ec_float(modulus[k]),
                ec_float(phase[k]),
                ec_float(times[k]),
                ec_float(0.0),
                ec_float(0.0),
                ec_float(1.0),
                ec_float(temperature_C),
            ]
        )
        for k in range(f.size)
    ]
    _write_mpt(path, header, EIS_COLUMNS, rows)


def write_dc_mpt(
    path,
    time_s,
    control_V,
    voltage_V,
    current_A,
    step,
    *,
    started: datetime,
    comment: str,
    area_cm2: float,
    hold_s: float,
) -> None:
    """Write a stepped chronoamperometry record (V, A) as an EC-Lab ``.mpt`` export (I in mA)."""
    steps = np.asarray(step, dtype=int)
    control = np.asarray(control_V, dtype=float)
    levels = [float(control[np.flatnonzero(steps == s)[0]]) for s in range(steps.max() + 1)]
    duration = f"0:00:{hold_s:07.4f}"
    settings = [
        ("Ns", "".join(f"{s:<20}" for s in range(len(levels)))),
        ("Ei (V)", "".join(f"{v:<20.4f}" for v in levels)),
        ("vs.", "".join(f"{'Ref':<20}" for _ in levels)),
        ("ti (h:m:s)", "".join(f"{duration:<20}" for _ in levels)),
        ("Imax", "".join(f"{'pass':<20}" for _ in levels)),
        ("dI", "".join(f"{'0.000':<20}" for _ in levels)),
        ("dt (s)", "".join(f"{'1.0000':<20}" for _ in levels)),
        ("I Range", "".join(f"{'Auto':<20}" for _ in levels)),
    ]
    header = _header("Chronoamperometry / Chronocoulometry", started, comment, area_cm2, settings)
    t = np.asarray(time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i_mA = 1e3 * np.asarray(current_A, dtype=float)
    rows = [
        "\t".join(
            [ec_float(t[k]), ec_float(control[k]), ec_float(v[k]), ec_float(i_mA[k]), str(steps[k])]
        )
        for k in range(t.size)
    ]
    _write_mpt(path, header, DC_COLUMNS, rows)


def write_eis_csv(path, frequency_Hz, z_real, z_imag) -> None:
    """Write a spectrum as CSV: ``freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm`` (8 significant digits)."""
    rows = [",".join(EIS_CSV_COLUMNS)]
    rows += [
        f"{f:.8g},{zr:.8g},{-zi:.8g}"
        for f, zr, zi in zip(frequency_Hz, z_real, z_imag, strict=True)
    ]
    Path(path).write_bytes(("\n".join(rows) + "\n").encode("ascii"))


def write_dc_csv(path, time_s, voltage_V, current_A) -> None:
    """Write a DC record as CSV: ``time/s,Ewe/V,I/mA`` (8 significant digits)."""
    rows = [",".join(DC_CSV_COLUMNS)]
    rows += [
        f"{t:.8g},{v:.8g},{1e3 * i:.8g}"
        for t, v, i in zip(time_s, voltage_V, current_A, strict=True)
    ]
    Path(path).write_bytes(("\n".join(rows) + "\n").encode("ascii"))


#: A symmetric cell with three well-separated R‖CPE arcs (Ω, Ω⁻¹ s^α, -): the spectrum that
#: the README's and the speed benchmark's ``R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)`` fits describe.
THREE_ARC_CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
THREE_ARC_TRUTH = {
    "R0": 10.0, "R1": 40.0, "CPE1_0": 2e-8, "CPE1_1": 0.95, "R2": 120.0,
    "CPE2_0": 1e-6, "CPE2_1": 0.85, "R3": 300.0, "CPE3_0": 1e-4, "CPE3_1": 0.8,
}  # fmt: skip


def write_three_arc_cell(path, seed: int = 0) -> Path:
    """Write a 30 °C spectrum of :data:`THREE_ARC_TRUTH` (69 points, 7 MHz–0.1 Hz, 1 % noise)
    as ``.mpt``."""
    from inference.circuits import simulate_spectrum

    f = np.geomspace(7e6, 0.1, 69)
    ds = simulate_spectrum(THREE_ARC_CIRCUIT, THREE_ARC_TRUTH, f, noise_rel=0.01, seed=seed)
    write_eis_mpt(path, f, ds["z_real"].values, ds["z_imag"].values, temperature_C=30.0,
                  started=datetime(2026, 1, 5, 9, 0), comment="three-arc cell (simulated)",
                  area_cm2=0.785)  # fmt: skip
    return Path(path)
