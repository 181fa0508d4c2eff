"""Instrument readers: real files checked against their own text, synthetic variants, broken files.

Expected values come from the files' text (a given line, split by hand here) or from the known
truth used to write a synthetic file, never from the readers' own output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from inference.errors import FileFormatError
from inference.inspect import describe_file
from inference.readers import (
    MAX_FILE_BYTES,
    detect_format,
    read_dc,
    read_records,
    read_spectra,
    read_spectrum,
)
from service.commands.inspect import inspect

INSTRUMENT_FILES = Path(__file__).parent / "data" / "instrument-files"
MORE_FILES = Path(__file__).parent / "data" / "instrument-files-more"
MPT = INSTRUMENT_FILES / "exampleDataBioLogic.mpt"
GAMRY = INSTRUMENT_FILES / "exampleDataGamry.DTA"
GAMRY_ABORT = INSTRUMENT_FILES / "exampleDataGamryABORT.DTA"
CSV = INSTRUMENT_FILES / "exampleData.csv"
MPR = MORE_FILES / "exampleDataBioLogic.mpr"
ZPLOT = MORE_FILES / "exampleDataZPlot.z"
ZPLOTW = MORE_FILES / "exampleDataZPlot_noComments.z"
CHI = MORE_FILES / "exampleDataCHInstruments.txt"
CHRONOA = MORE_FILES / "chronoa_data.dta"


def text_lines(path) -> list[str]:
    """The file's lines as text (Latin-1 maps every byte, enough to read numbers)."""
    return path.read_bytes().decode("latin-1").splitlines()


def fields(path, line: int, sep: str | None = "\t") -> list[float | str]:
    """Fields of 1-based ``line`` of ``path``, as floats where they are numbers."""
    out = []
    for token in text_lines(path)[line - 1].split(sep):
        try:
            out.append(float(token.strip().replace(",", ".") if sep != "," else token))
        except ValueError:
            out.append(token.strip())
    return out


def first_last(ds):
    return (
        (float(ds.frequency[0]), float(ds.z_real[0]), float(ds.z_imag[0])),
        (float(ds.frequency[-1]), float(ds.z_real[-1]), float(ds.z_imag[-1])),
    )


def one_line_error(excinfo, path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# --- real files, values checked against the file's text --------------------------------------


def test_biologic_mpt_real_file_values_and_attrs():
    ds = read_spectrum(MPT)
    lines = text_lines(MPT)
    assert lines[1].split(":")[1].strip() == "61"  # "Nb header lines : 61": header on line 61
    n_data = sum(1 for line in lines[61:] if line.strip())
    assert ds.sizes["frequency"] == n_data == 43
    first, last = fields(MPT, 62), fields(MPT, len(lines))
    # freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm are the first three columns; z_imag = -(-Im(Z)).
    assert first_last(ds) == (
        pytest.approx((first[0], first[1], -first[2]), rel=1e-12),
        pytest.approx((last[0], last[1], -last[2]), rel=1e-12),
    )
    assert ds.attrs["instrument"] == "BioLogic SP-150"  # "Device : SP-150 (SN 10791079)"
    assert ds.attrs["technique"] == "PEIS"  # "Potentio Electrochemical Impedance Spectroscopy"
    assert ds.attrs["format"] == "biologic-mpt"
    assert ds.attrs["source_file"] == str(MPT)
    assert "temperature_K" not in ds.attrs  # the file states none


def test_sign_convention_capacitive_tail_is_negative_for_every_convention(tmp_path):
    # The BioLogic file stores -Im(Z) > 0 at the lowest frequencies (capacitive tail).
    last = fields(MPT, 104)
    assert last[2] > 0
    assert float(read_spectrum(MPT).z_imag[-1]) < 0
    # Gamry stores the signed Zimag: negative values stay negative.
    gamry = read_spectrum(GAMRY)
    assert float(gamry.z_imag[0]) == fields(GAMRY, 449)[5] < 0
    # The same numbers under "-Im(Z)/Ohm" and under "Im(Z)/Ohm" give the same spectrum.
    f, zr, zi = np.geomspace(1e5, 1, 11), np.linspace(10, 20, 11), -np.linspace(1, 5, 11)
    neg, pos = tmp_path / "neg.csv", tmp_path / "pos.csv"
    neg.write_text(
        "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n"
        + "".join(f"{a},{b},{-c}\n" for a, b, c in zip(f, zr, zi, strict=True))
    )
    pos.write_text(
        "freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm\n"
        + "".join(f"{a},{b},{c}\n" for a, b, c in zip(f, zr, zi, strict=True))
    )
    for path in (neg, pos):
        np.testing.assert_allclose(read_spectrum(path).z_imag, zi)
    # A file that stores -Im(Z) under a header that does not say so: imag_sign=-1.
    unsigned = tmp_path / "unsigned.csv"
    unsigned.write_text(neg.read_text().replace("-Im(Z)/Ohm", "Z''"))
    np.testing.assert_allclose(read_spectrum(unsigned).z_imag, -zi)  # taken as signed Im(Z)
    np.testing.assert_allclose(read_spectrum(unsigned, imag_sign=-1).z_imag, zi)


def test_gamry_dta_real_file_values_and_attrs():
    ds = read_spectrum(GAMRY)
    lines = text_lines(GAMRY)
    header = lines.index("ZCURVE\tTABLE")
    rows = [i + 1 for i in range(header + 3, len(lines)) if lines[i].startswith("\t")]
    assert ds.sizes["frequency"] == len(rows)
    # Pt, Time, Freq, Zreal, Zimag: columns 1..5 after the leading tab.
    first, last = fields(GAMRY, rows[0]), fields(GAMRY, rows[-1])
    assert first_last(ds) == ((first[3], first[4], first[5]), (last[3], last[4], last[5]))
    assert ds.attrs["instrument"] == "Gamry REF3000-34128"  # PSTAT line
    assert ds.attrs["technique"] == "PEIS"  # TAG EISPOT
    assert "experiment_aborted" not in ds.attrs


def test_gamry_aborted_run_is_read_up_to_the_abort_and_flagged():
    lines = text_lines(GAMRY_ABORT)
    header = lines.index("ZCURVE\tTABLE")
    abort = next(i for i, line in enumerate(lines) if line.startswith("EXPERIMENTABORTED"))
    assert lines[abort].split("\t")[2] == "T"
    n_measured = abort - (header + 3)
    with pytest.warns(UserWarning, match="aborted"):
        ds = read_spectrum(GAMRY_ABORT)
    assert ds.sizes["frequency"] == n_measured
    assert ds.attrs["experiment_aborted"] == 1
    last = fields(GAMRY_ABORT, abort)  # the row just above EXPERIMENTABORTED
    assert float(ds.frequency[-1]) == last[3]
    info = describe_file(GAMRY_ABORT)
    assert info["ok"] and "aborted" in info["verdict"]


def test_missing_frequency_column_is_a_clear_error():
    path = INSTRUMENT_FILES / "exampleDataBioLogic_MissingFreq.mpt"
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "line 61" in message  # the column header line
    assert "no frequency column" in message and "freq/Hz" in message
    assert "'Re(Z)/Ohm'" in message  # lists the columns it did find


def test_headerless_csv_real_file():
    ds = read_spectrum(CSV)
    lines = text_lines(CSV)
    first, last = fields(CSV, 1, ","), fields(CSV, len(lines), ",")
    assert ds.sizes["frequency"] == len(lines)
    assert first_last(ds) == (tuple(first), tuple(last))  # freq, Z', signed Z''
    assert ds.attrs["format"] == "csv"


@pytest.mark.parametrize(
    ("path", "sep", "planned"), [(ZPLOT, "\t", 56), (ZPLOTW, ",", 79)], ids=["zplot2", "zplotw"]
)
def test_zplot_real_files(path, sep, planned):
    ds = read_spectrum(path)
    lines = text_lines(path)
    start = next(i for i, line in enumerate(lines) if "Freq(Hz)" in line) + 1
    data = [i + 1 for i in range(start, len(lines)) if lines[i].strip()[:1].isdigit()]
    assert ds.sizes["frequency"] == len(data)
    first, last = fields(path, data[0], sep), fields(path, data[-1], sep)
    # Freq(Hz) Ampl Bias Time(Sec) Z'(a) Z''(b): Z'' is the signed Im(Z).
    assert first_last(ds) == ((first[0], first[4], first[5]), (last[0], last[4], last[5]))
    assert ds.attrs["technique"] == "PEIS"  # "Sweep Frequency, Control Voltage"
    assert "ZPlot" in ds.attrs["instrument"]
    assert ds.attrs["points_planned"] == planned  # the file's stated count (sweep stopped early)


def test_ch_instruments_export_with_metadata_block():
    ds = read_spectrum(CHI)
    lines = text_lines(CHI)
    data = [i + 1 for i, line in enumerate(lines) if line[:1].isdigit()]
    first, last = fields(CHI, data[0], ","), fields(CHI, data[-1], ",")
    assert ds.sizes["frequency"] == len(data)
    assert first_last(ds) == (tuple(first[:3]), tuple(last[:3]))  # Freq/Hz, Z'/ohm, Z"/ohm
    assert ds.attrs["instrument"] == "CHI660E"  # "Instrument Model:  CHI660E"


def test_gamry_chronoamperometry_real_file():
    ds = read_dc(CHRONOA)
    lines = text_lines(CHRONOA)
    rows = [i + 1 for i, line in enumerate(lines) if line.startswith("\t") and line[1:2].isdigit()]
    first, last = fields(CHRONOA, rows[0]), fields(CHRONOA, rows[-1])
    # Pt, T (s), Vf (V), Im (A), Vu, Sig (applied V)
    assert ds.sizes["time"] == len(rows)
    assert (float(ds.time_s[0]), float(ds.voltage_V[0]), float(ds.current_A[0])) == (
        first[2],
        first[3],
        first[4],
    )
    assert (float(ds.time_s[-1]), float(ds.voltage_V[-1]), float(ds.current_A[-1])) == (
        last[2],
        last[3],
        last[4],
    )
    applied = sorted({fields(CHRONOA, r)[6] for r in rows})
    assert ds.attrs["n_steps"] == len(applied) == 2  # pre-step 0 V, then 0.5 V
    assert ds.attrs["step_bias_V"] == applied
    assert ds.attrs["technique"] == "CA"  # TAG CHRONOA


def test_biologic_mpr_same_values_as_its_text_export():
    pytest.importorskip("galvani", reason="galvani (GPL-3, sigmalab[mpr]) is not installed")
    # impedance.py replaced this .mpr with "the same data that's in the .mpt file".
    binary, text = read_spectrum(MPR), read_spectrum(MPT)
    assert binary.attrs["format"] == "biologic-mpr"
    for name in ("frequency", "z_real", "z_imag"):
        np.testing.assert_allclose(binary[name], text[name], rtol=1e-6)  # float32 in the .mpr


def test_mpr_without_galvani_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "galvani", None)  # import galvani → ImportError
    with pytest.raises(FileFormatError, match=r"install sigmalab\[mpr\] \(GPL-3 galvani\)"):
        read_spectrum(MPR)


# --- encodings, decimal commas, detection -----------------------------------------------------


def test_decimal_comma_latin1_mpt_reads_the_same(tmp_path):
    lines = MPT.read_bytes().decode("latin-1").split("\n")
    french = lines[:61] + [line.replace(".", ",") for line in lines[61:]]
    path = tmp_path / "french.mpt"
    path.write_bytes("\r\n".join(french).encode("latin-1"))
    assert b"\xb5" in path.read_bytes()  # 'µ' of Cs/µF as a Latin-1 byte
    original, converted = read_spectrum(MPT), read_spectrum(path)
    for name in ("frequency", "z_real", "z_imag"):
        np.testing.assert_array_equal(converted[name], original[name])
    assert converted.attrs["decimal"] == ","


def test_utf8_export_with_bom_reads_the_same(tmp_path):
    path = tmp_path / "utf8.mpt"
    path.write_bytes(b"\xef\xbb\xbf" + MPT.read_bytes().decode("latin-1").encode("utf-8"))
    np.testing.assert_array_equal(read_spectrum(path).z_real, read_spectrum(MPT).z_real)


def test_semicolon_csv_with_decimal_commas_and_tsv(tmp_path):
    lines = text_lines(CSV)
    rows = [line.split(",") for line in lines]
    semicolon = tmp_path / "excel.csv"
    semicolon.write_text(
        "Frequency (Hz);Z' (Ohm);Z'' (Ohm)\n"
        + "\n".join(";".join(v.replace(".", ",") for v in row) for row in rows)
    )
    tsv = tmp_path / "export.tsv"
    tsv.write_text("freq/Hz\tRe(Z)/Ohm\tIm(Z)/Ohm\n" + "\n".join("\t".join(r) for r in rows))
    reference = read_spectrum(CSV)
    for path in (semicolon, tsv):
        ds = read_spectrum(path)
        np.testing.assert_allclose(ds.z_imag, reference.z_imag, rtol=1e-15)
        np.testing.assert_allclose(ds.frequency, reference.frequency, rtol=1e-15)


def test_gamry_decimal_comma(tmp_path):
    lines = text_lines(CHRONOA)
    rows = [i for i, line in enumerate(lines) if line.startswith("\t") and line[1:2].isdigit()]
    german = [line.replace(".", ",") if i in rows else line for i, line in enumerate(lines)]
    path = tmp_path / "de.DTA"
    path.write_text("\n".join(german), encoding="latin-1")
    np.testing.assert_array_equal(read_dc(path).current_A, read_dc(CHRONOA).current_A)


def test_format_is_detected_from_content_not_extension(tmp_path):
    for source, fmt in (
        (MPT, "biologic-mpt"),
        (GAMRY, "gamry-dta"),
        (ZPLOT, "zplot"),
        (CSV, "csv"),
        (MPR, "biologic-mpr"),
    ):
        renamed = tmp_path / f"{source.stem}.txt"
        renamed.write_bytes(source.read_bytes())
        assert detect_format(renamed) == fmt


def test_explicit_columns_and_units(tmp_path):
    path = tmp_path / "odd.csv"
    f = np.geomspace(1e4, 1, 9)
    path.write_text("comment,a,b,c\n" + "".join(f"x,{a / 1e3},{2 * a},{-a}\n" for a in f))
    ds = read_spectrum(path, columns={"frequency": 1, "z_real": "b", "z_imag": "c"})
    np.testing.assert_allclose(ds.frequency, f / 1e3)  # by index: SI (Hz), no scaling
    np.testing.assert_allclose(ds.z_real, 2 * f)
    units = tmp_path / "units.csv"
    units.write_text("f (kHz),Z' (kOhm),Z'' (kOhm)\n" + "".join(f"{a},1,-2\n" for a in f))
    ds = read_spectrum(units)
    np.testing.assert_allclose(ds.frequency, f * 1e3)
    assert float(ds.z_real[0]) == 1e3 and float(ds.z_imag[0]) == -2e3


# --- files as the virtual lab writes them (EC-Lab style), with known truth -------------------


def rc_impedance(f, r0=50.0, r1=400.0, c1=1e-7):
    w = 2 * np.pi * f
    return r0 + r1 / (1 + 1j * w * r1 * c1)


def write_mpt(path, technique: str, columns: list[str], rows: list[list[float]], comma=False):
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : {n}",
        "",
        technique,
        "",
        "Run on channel : 1 (SN 0001)",
        "Device : SP-300 (SN 0001)",
        "Electrode surface area : 0.785 cm²",
        "",
    ]
    n = len(header) + 1
    header[1] = header[1].format(n=n)
    body = ["\t".join(columns) + "\t"]
    for row in rows:
        line = "\t".join(f"{v:.7E}" for v in row)
        body.append(line.replace(".", ",") if comma else line)
    path.write_bytes("\r\n".join(header + body).encode("latin-1"))
    return n


PEIS_COLUMNS = [
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
]


def peis_rows(f, cycle, temperature_C):
    z = rc_impedance(f)
    return [
        [fi, zi.real, -zi.imag, abs(zi), np.degrees(np.angle(zi)), k, 0.0, 0.0, cycle, t]
        for k, (fi, zi, t) in enumerate(zip(f, z, temperature_C, strict=True))
    ]


def test_virtual_lab_peis_mpt_with_temperature_and_cycles(tmp_path):
    f = np.geomspace(1e6, 1, 25)
    temps = [(25.0, 25.2), (50.0, 50.4), (75.0, 74.8)]
    rows = []
    for cycle, (t0, t1) in enumerate(temps, start=1):
        rows += peis_rows(f, cycle, np.linspace(t0, t1, f.size))
    path = tmp_path / "cell_peis.mpt"
    n_header = write_mpt(
        path, "Potentio Electrochemical Impedance Spectroscopy", PEIS_COLUMNS, rows
    )
    spectra = read_spectra(path)
    assert len(spectra) == 3
    z = rc_impedance(f)
    for k, (ds, (t0, t1)) in enumerate(zip(spectra, temps, strict=True)):
        np.testing.assert_allclose(ds.frequency, f, rtol=1e-7)
        np.testing.assert_allclose(ds.z_real, z.real, rtol=1e-7)
        np.testing.assert_allclose(ds.z_imag, z.imag, rtol=1e-7)  # negative: capacitive arc
        assert ds.attrs["temperature_K"] == pytest.approx((t0 + t1) / 2 + 273.15, abs=1e-6)
        assert ds.attrs["cycle"] == k + 1 and ds.attrs["spectrum_index"] == k
        assert ds.attrs["instrument"] == "BioLogic SP-300"
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "3 spectra" in message and "read_spectra" in message
    assert f"lines {n_header + 1}, {n_header + 1 + f.size}" in message


def test_frequency_restart_splits_sweeps_without_cycle_column(tmp_path):
    lines = text_lines(CSV)  # one ascending sweep
    path = tmp_path / "two_sweeps.csv"
    path.write_text("\n".join(lines + lines))
    spectra = read_spectra(path)
    assert [ds.sizes["frequency"] for ds in spectra] == [len(lines), len(lines)]
    with pytest.raises(FileFormatError, match="2 spectra.*use read_spectra"):
        read_spectrum(path)


def test_gamry_file_with_two_zcurve_tables(tmp_path):
    lines = text_lines(GAMRY)
    start = lines.index("ZCURVE\tTABLE")
    path = tmp_path / "two.DTA"
    path.write_text("\n".join(lines + lines[start:]), encoding="latin-1")
    spectra = read_spectra(path)
    assert len(spectra) == 2
    np.testing.assert_array_equal(spectra[1].z_real, spectra[0].z_real)
    with pytest.raises(FileFormatError, match="read_spectra"):
        read_spectrum(path)


def test_virtual_lab_chronoamperometry_mpt(tmp_path):
    bias_V = [0.05, 0.10, 0.20]
    r_ohm, per_step = 1e4, 20
    rows, t = [], 0.0
    for ns, v in enumerate(bias_V):
        for k in range(per_step):
            current_mA = 1e3 * v / r_ohm * (1 + np.exp(-k / 3))  # decays to Ohm's law
            rows.append([t, v, v + 1e-4 * np.sin(k), current_mA, ns])
            t += 0.5
    path = tmp_path / "cell_ca.mpt"
    write_mpt(
        path,
        "Chronoamperometry / Chronocoulometry",
        ["time/s", "control/V", "Ewe/V", "<I>/mA", "Ns"],
        rows,
        comma=True,
    )
    ds = read_dc(path)
    data = np.array(rows)
    np.testing.assert_allclose(ds.time_s, data[:, 0], rtol=1e-7)
    np.testing.assert_allclose(ds.voltage_V, data[:, 2], rtol=1e-7)  # measured Ewe
    np.testing.assert_allclose(ds.current_A, data[:, 3] / 1e3, rtol=1e-7)  # mA → A
    np.testing.assert_array_equal(ds.step, data[:, 4].astype(int))
    assert ds.attrs["n_steps"] == 3
    np.testing.assert_allclose(ds.attrs["step_bias_V"], bias_V)
    assert ds.attrs["technique"] == "CA" and ds.attrs["instrument"] == "BioLogic SP-300"
    with pytest.raises(FileFormatError, match="DC record.*use read_dc"):
        read_spectrum(path)
    # One sequence (Ns constant) with several set-points: steps still follow control/V.
    for row in rows:
        row[4] = 0
    write_mpt(path, "Chronoamperometry / Chronocoulometry",
              ["time/s", "control/V", "Ewe/V", "<I>/mA", "Ns"], rows)  # fmt: skip
    single = read_dc(path)
    assert single.attrs["n_steps"] == 3
    np.testing.assert_allclose(single.attrs["step_bias_V"], bias_V)


def test_virtual_lab_csv_files(tmp_path):
    f = np.geomspace(1e5, 0.1, 13)
    z = rc_impedance(f)
    eis = tmp_path / "eis.csv"
    eis.write_text(
        "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n"
        + "".join(
            f"{float(a)!r},{float(b.real)!r},{float(-b.imag)!r}\n"
            for a, b in zip(f, z, strict=True)
        )
    )
    ds = read_spectrum(eis)
    np.testing.assert_array_equal(ds.z_imag, z.imag)
    dc = tmp_path / "dc.csv"
    t = np.arange(30.0)
    v = np.repeat([0.1, 0.2, 0.3], 10)
    dc.write_text(
        "time/s,Ewe/V,I/mA\n"
        + "".join(f"{a},{b},{b / 1e4 * 1e3}\n" for a, b in zip(t, v, strict=True))
    )
    rec = read_dc(dc)
    np.testing.assert_allclose(rec.current_A, v / 1e4)
    assert rec.attrs["n_steps"] == 3
    np.testing.assert_allclose(rec.attrs["step_bias_V"], [0.1, 0.2, 0.3])
    with pytest.raises(FileFormatError, match="not a DC record.*use read_spectrum"):
        read_dc(eis)


# --- broken files: one-line FileFormatError naming the file and the problem ------------------


def mpt_with(tmp_path, name, edit) -> tuple:
    lines = MPT.read_bytes().decode("latin-1").split("\n")
    edit(lines)
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode("latin-1"))
    return path


def test_empty_and_blank_files(tmp_path):
    empty = tmp_path / "empty.mpt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n  \n\t\n")
    for path, problem in ((empty, "file is empty"), (blank, "file is empty")):
        with pytest.raises(FileFormatError) as excinfo:
            read_spectrum(path)
        assert problem in one_line_error(excinfo, path)


def test_truncated_file(tmp_path):
    def cut(lines):
        del lines[90:]
        lines[-1] = lines[-1][:40]  # the export stopped in the middle of a row

    path = mpt_with(tmp_path, "cut.mpt", cut)
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "line 90" in message and "truncated" in message
    header_cut = tmp_path / "header_cut.mpt"
    header_cut.write_bytes(b"\n".join(MPT.read_bytes().split(b"\n")[:30]))
    with pytest.raises(FileFormatError, match="61 header lines.*30 lines.*truncated"):
        read_spectrum(header_cut)


def test_wrong_columns(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("voltage,charge,colour\n1,2,3\n4,5,6\n")
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "['voltage', 'charge', 'colour']" in message
    with pytest.raises(FileFormatError, match="column 'Zreal' not found"):
        read_spectrum(CSV, columns={"frequency": 0, "z_real": "Zreal", "z_imag": 2})


def test_text_where_a_number_belongs(tmp_path):
    def spoil(lines):
        row = lines[69].split("\t")  # line 70
        row[1] = "abc"
        lines[69] = "\t".join(row)

    path = mpt_with(tmp_path, "text.mpt", spoil)
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "line 70" in message and "'abc'" in message and "'Re(Z)/Ohm'" in message


def test_nan_in_data(tmp_path):
    def spoil(lines):
        row = lines[79].split("\t")  # line 80
        row[2] = "NaN"
        lines[79] = "\t".join(row)

    path = mpt_with(tmp_path, "nan.mpt", spoil)
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "line 80" in message and "nan" in message.lower() and "'-Im(Z)/Ohm'" in message


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    assert "binary file, not a text export" in one_line_error(excinfo, path)


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as fh:
        fh.truncate(50_000_000)  # sparse: 50 MB on paper, nothing written
    assert MAX_FILE_BYTES == 20_000_000
    with pytest.raises(FileFormatError) as excinfo:
        read_spectrum(path)
    message = one_line_error(excinfo, path)
    assert "50.0 MB" in message and "20 MB limit" in message and "max_bytes" in message
    # The size check comes before any reading: reading would have found the NUL bytes and
    # called it a binary file.
    assert "binary" not in message
    with pytest.raises(FileFormatError, match="limit"):
        read_spectrum(MPT, max_bytes=1000)
    assert os.path.getsize(MPT) < 20_000 and read_spectrum(MPT, max_bytes=20_000)


def test_not_an_instrument_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Measured cell 3 today.\nLooked fine.\n")
    with pytest.raises(FileFormatError, match="not a recognised instrument export"):
        read_spectrum(path)
    with pytest.raises(FileFormatError, match="no such file"):
        read_spectrum(tmp_path / "missing.mpt")


def test_read_records_names_both_kinds_of_columns_when_neither_is_found(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(FileFormatError, match="neither impedance columns.*nor DC columns"):
        read_records(path)


# --- inspect ----------------------------------------------------------------------------------


def test_describe_file_summaries(tmp_path):
    good = describe_file(MPT)
    assert good["ok"] and good["verdict"] == "ok" and good["format"] == "biologic-mpt"
    assert good["n_points"] == 43
    first, last = fields(MPT, 62), fields(MPT, 104)
    assert (good["frequency_min_Hz"], good["frequency_max_Hz"]) == (last[0], first[0])
    dc = describe_file(CHRONOA)
    assert dc["kind"] == "dc" and dc["n_steps"] == 2 and dc["step_bias_V"] == [0.0, 0.5]
    bad = describe_file(INSTRUMENT_FILES / "exampleDataBioLogic_MissingFreq.mpt")
    assert not bad["ok"] and bad["verdict"].startswith("line 61: no frequency column")


def test_inspect_cli_lists_every_file_and_fails_if_one_is_bad(tmp_path):
    app = typer.Typer()
    app.command()(inspect)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02" * 100)
    runner = CliRunner()
    result = runner.invoke(app, [str(MPT), str(CHRONOA), str(bad)], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    assert "biologic-mpt" in result.output and "43" in result.output
    assert "2 steps: 0, 0.5 V" in result.output
    assert "binary file, not a text export" in result.output
    ok = runner.invoke(app, [str(MPT), str(GAMRY)], env={"COLUMNS": "250"})
    assert ok.exit_code == 0, ok.output
