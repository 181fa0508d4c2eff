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

from inference.errors import FileFormatError, InputError
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
    assert "2 steps" in result.output and "0…0.5 V" in result.output
    assert "binary file, not a text export" in result.output
    ok = runner.invoke(app, [str(MPT), str(GAMRY)], env={"COLUMNS": "250"})
    assert ok.exit_code == 0, ok.output


# --- more instruments and export styles (tests/data/instrument-files-external, shared data) ---

EXTERNAL = Path(__file__).parent / "data" / "instrument-files-external"
REPO = Path(__file__).resolve().parent.parent
SHARED = next(
    (p / "data" for p in (REPO.parent / "shared", REPO.parent.parent / "shared") if p.is_dir()),
    None,
)
NOVOCONTROL_SERIES = (
    sorted((SHARED / "real-spectra" / "eisfitpython-s04147").glob("s04147-*deg.txt"))
    if SHARED
    else []
)


def last_line(path) -> int:
    lines = text_lines(path)
    return max(i + 1 for i, line in enumerate(lines) if line.strip())


# file, format, first and last data line, separator, (f, Re, Im) field indices, sign of the
# stored Im(Z), instrument attr: every expected value is read from the file's own text here.
EXPORTS = {
    "Autolab Z60W": ("exampleDataAutolab.txt", "zplot", 12, None, ",", (0, 4, 5), 1, "Z60W 1.1"),
    "Parstat": ("exampleDataParstat.txt", "csv", 783, None, "\t", (3, 4, 5), 1, "unknown"),
    "Solartron PowerSuite": (  # lines end in \r\r\n: every other line is blank
        "exampleDataPowersuite.txt",
        "csv",
        3,
        None,
        "\t",
        (0, 1, 2),
        1,
        "unknown",
    ),
    "VersaStudio .par": (
        "exampleDataVersaStudio.par",
        "versastudio-par",
        118,  # after "Definition=…" (line 117), up to "</Segment1>"
        178,
        ",",
        (9, 14, 15),
        1,
        "Princeton Applied Research VersaSTAT4",
    ),
    "RelaxIS export": (
        "PEIS_LPSCl_IonBlocking_-25C_RelaxIS.txt",
        "csv",
        5,
        None,
        "\t",
        (0, 1, 2),
        1,
        "unknown",
    ),
    "EC-Lab LPSCl pellet": (
        "PEIS_LPSCl_IonBlocking_-25C.txt",
        "biologic-mpt",
        66,
        None,
        "\t",
        (0, 1, 2),
        -1,
        "BioLogic SP-300",
    ),
    "Gamry GALVEIS": ("EISGALV_EISTest3.DTA", "gamry-dta", 11, None, "\t", (3, 4, 5), 1, "Gamry"),
    "Novocontrol with geometry": (
        "novocontrol_Example2a.txt",
        "novocontrol",
        5,
        None,
        "\t",
        (0, 1, 2),
        1,
        "Novocontrol",
    ),
    "Novocontrol CSV": (
        "novocontrol_CSV_Example.csv",
        "novocontrol",
        2,
        None,
        ",",
        (0, 1, 2),
        1,
        "Novocontrol",
    ),
    "ZPlot 3.2c": (
        "Circuit1_EIS_1.z",
        "zplot",
        124,
        None,
        "\t",
        (0, 4, 5),
        1,
        "Scribner ZPlot 3.2c",
    ),
}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_more_instruments_first_and_last_values_from_the_files_text(name):
    file, fmt, first, last, sep, (fi, ri, ii), sign, instrument = EXPORTS[name]
    path = EXTERNAL / file
    last = last or last_line(path)
    assert detect_format(path) == fmt
    ds = read_spectrum(path)
    a, b = fields(path, first, sep), fields(path, last, sep)
    assert first_last(ds) == ((a[fi], a[ri], sign * a[ii]), (b[fi], b[ri], sign * b[ii]))
    assert ds.attrs["format"] == fmt and ds.attrs["instrument"] == instrument
    if name != "Parstat":
        lines = text_lines(path)[first - 1 : last]
        assert ds.sizes["frequency"] == sum(1 for line in lines if line.strip())
    assert describe_file(path)["verdict"] == "ok"


def test_parstat_dc_rows_before_the_sweep_are_left_out():
    path = EXTERNAL / "exampleDataParstat.txt"
    ds = read_spectrum(path)
    zero = [i for i in range(2, last_line(path) + 1) if fields(path, i)[3] == 0.0]
    assert ds.attrs["rows_without_frequency"] == len(zero) == 781
    assert ds.sizes["frequency"] == last_line(path) - 1 - len(zero)


def test_novocontrol_geometry_line_and_title():
    ds = read_spectrum(EXTERNAL / "novocontrol_Example2a.txt")
    # "Diameter[mm]: 1.300e+01  Thickness[mm]: 7.500e-01 ... Electrode Thickness[mm]: 4.00e+00"
    assert ds.attrs["sample_diameter_mm"] == 13.0 and ds.attrs["sample_thickness_mm"] == 0.75
    assert ds.attrs["title"].startswith("s05751_25deg")


@pytest.mark.skipif(not NOVOCONTROL_SERIES, reason="shared/data not beside the repository")
@pytest.mark.parametrize("path", NOVOCONTROL_SERIES, ids=lambda p: p.stem)
def test_novocontrol_temperature_series_reads_with_default_options(path):
    ds = read_spectrum(path)
    a, b = fields(path, 4), fields(path, last_line(path))
    assert first_last(ds) == (tuple(a[:3]), tuple(b[:3]))  # Freq.[Hz], Zs'[ohm], signed Zs''
    assert ds.sizes["frequency"] == last_line(path) - 3
    assert ds.attrs["format"] == "novocontrol" and ds.attrs["title"] == path.stem


def test_polar_columns_of_real_files_give_the_same_impedance():
    # RelaxIS: |Z| (column 3) and Theta (column 4, degrees) beside Z', Z''.
    relaxis = EXTERNAL / "PEIS_LPSCl_IonBlocking_-25C_RelaxIS.txt"
    rect = read_spectrum(relaxis)
    polar = read_spectrum(relaxis, columns="frequency=0,z_mod=3,phase=4")
    np.testing.assert_allclose(polar.z_real, rect.z_real, rtol=1e-6)
    np.testing.assert_allclose(polar.z_imag, rect.z_imag, rtol=1e-6)
    # EC-Lab: |Z|/Ohm and Phase(Z)/deg beside Re(Z), -Im(Z).
    mpt = EXTERNAL / "PEIS_LPSCl_IonBlocking_-25C.txt"
    rect = read_spectrum(mpt)
    polar = read_spectrum(mpt, columns={"frequency": 0, "z_mod": "|Z|/Ohm", "phase": 4})
    np.testing.assert_allclose(polar.z_real, rect.z_real, rtol=1e-5)
    np.testing.assert_allclose(polar.z_imag, rect.z_imag, rtol=1e-5)


RC_F = np.geomspace(1e5, 1, 11)
RC_Z = rc_impedance(RC_F)

# Header rows as instruments write them; every file holds the same RC spectrum.
HEADER_STYLES = {
    "generic lower case": ("frequency,real,imaginary", ",", lambda z: (z.real, z.imag)),
    "generic imag": ("Frequency,Real,Imag", ",", lambda z: (z.real, z.imag)),
    "units in brackets": ("Frequency [Hz];Z_re [Ohm];Z_im [Ohm]", ";", lambda z: (z.real, z.imag)),
    "units after a slash": ("freq / Hz\tReZ / Ohm\tImZ / Ohm", "\t", lambda z: (z.real, z.imag)),
    "upper case": ("FREQUENCY (HZ),ZREAL (OHM),ZIMAG (OHM)", ",", lambda z: (z.real, z.imag)),
    "Novocontrol blanks": (
        "  Freq.[Hz]  \t Z' [Ohms] \t Z'' [Ohms]",
        "\t",
        lambda z: (z.real, z.imag),
    ),
    "Nova -Z'' and polar": (
        "Index;Frequency (Hz);Z' (Ω);-Z'' (Ω);Z (Ω);-Phase (°);Time (s)",
        ";",
        lambda z: (z.real, -z.imag, abs(z), -np.degrees(np.angle(z))),
    ),
    "Zahner polar": (
        "Number\tFrequency/Hz\tImpedance/Ohm\tPhase/deg\tSignificance\tTime/s",
        "\t",
        lambda z: (abs(z), np.degrees(np.angle(z)), 1.0),
    ),
    "Gamry-style Zmod/Zphz": ("Freq,Zmod,Zphz", ",", lambda z: (abs(z), np.degrees(np.angle(z)))),
    "Mod(Z) and -Phase(Z)/deg": (
        "freq/Hz,Mod(Z)/Ohm,-Phase(Z)/deg",
        ",",
        lambda z: (abs(z), -np.degrees(np.angle(z))),
    ),
    "phase in radians": (
        "f (Hz),|Z| (kOhm),phase (rad)",
        ",",
        lambda z: (abs(z) / 1e3, np.angle(z)),
    ),
}


def write_table(path, header, sep, values, encoding="utf-8"):
    leading = header.split(sep)[0].strip().lower() in ("index", "number")
    rows = []
    for k, (f, z) in enumerate(zip(RC_F, RC_Z, strict=True)):
        cells = [f, *np.atleast_1d(values(z))]
        cells = ([k + 1] if leading else []) + cells
        if len(cells) < len(header.split(sep)):
            cells.append(float(k))  # Nova/Zahner time column
        rows.append(sep.join(f"{v:.10g}" for v in cells))
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))


@pytest.mark.parametrize("style", list(HEADER_STYLES))
def test_header_styles_are_recognised_and_polar_converted_exactly(tmp_path, style):
    header, sep, values = HEADER_STYLES[style]
    path = tmp_path / "spectrum.txt"
    write_table(path, header, sep, values)
    ds = read_spectrum(path)
    np.testing.assert_allclose(ds.frequency, RC_F, rtol=1e-9)
    np.testing.assert_allclose(ds.z_real, RC_Z.real, rtol=1e-8)
    np.testing.assert_allclose(ds.z_imag, RC_Z.imag, rtol=1e-8)
    assert (ds.z_imag < 0).all()  # capacitive, whatever the file's convention


def test_header_with_doubled_tabs_is_matched_to_its_data(tmp_path):
    # EISFitpython's Example_header.txt layout: comment lines, "Freq.[Hz]<TAB><TAB> Zs'[ohm] ..."
    path = tmp_path / "doubled.txt"
    rows = "".join(
        f"{f:.6e}\t{z.real:.6e}\t{z.imag:.6e}\n" for f, z in zip(RC_F, RC_Z, strict=True)
    )
    path.write_text("# Start Frequency (Hz): 1\n\nFreq.[Hz]\t\t Zs'[ohm] \t\t Zs''[ohm]\n" + rows)
    ds = read_spectrum(path)
    np.testing.assert_allclose(ds.z_imag, RC_Z.imag, rtol=1e-6)
    swapped = tmp_path / "swapped.txt"  # the header, not the position, says which is which
    header = "Freq.[Hz]\t\t Zs''[ohm] \t\t Zs'[ohm]"
    swapped.write_text(path.read_text().replace("Freq.[Hz]\t\t Zs'[ohm] \t\t Zs''[ohm]", header))
    ds = read_spectrum(swapped)
    np.testing.assert_allclose(ds.z_real, RC_Z.imag, rtol=1e-6)


def test_palmsens_utf16_csv(tmp_path):
    path = tmp_path / "palmsens.csv"
    header = "freq / Hz,Z' / Ohm,-Z'' / Ohm,Z / Ohm,-Phase / °"
    write_table(
        path,
        header,
        ",",
        lambda z: (z.real, -z.imag, abs(z), -np.degrees(np.angle(z))),
        encoding="utf-16",
    )
    ds = read_spectrum(path)
    assert ds.attrs["file_encoding"] == "utf-16"
    np.testing.assert_allclose(ds.z_imag, RC_Z.imag, rtol=1e-8)


def test_phase_outside_180_degrees_is_refused(tmp_path):
    path = tmp_path / "polar.csv"
    write_table(path, "freq/Hz,|Z|/Ohm,Phase/deg", ",", lambda z: (abs(z), 2 * np.pi))
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",-270"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as info:
        read_spectrum(path)
    message = one_line_error(info, path)
    assert "line 4" in message and "'Phase/deg'" in message and "±180°" in message


def test_gamry_drift_corrected_zcurve_gives_both_spectra(tmp_path):
    # The real Gamry file with drift-corrected columns added as Framework writes them
    # (ZrealDrCor, ZimagDrCor after Zphz); no permissively licensed real one was found.
    lines = text_lines(GAMRY)
    start = next(i for i, line in enumerate(lines) if line.startswith("ZCURVE"))
    out, raw, fixed = [], [], []
    for i, line in enumerate(lines):
        cells = line.split("\t")
        if i == start + 1:
            cells[9:9] = ["ZrealDrCor", "ZimagDrCor"]
        elif i == start + 2:
            cells[9:9] = ["ohm", "ohm"]
        elif i > start + 2 and line.startswith("\t") and len(cells) > 9:
            zr, zi = float(cells[4]), float(cells[5])
            cells[9:9] = [f"{zr * 0.98:.6g}", f"{zi * 1.02:.6g}"]
            raw.append((zr, zi))
            fixed.append((float(f"{zr * 0.98:.6g}"), float(f"{zi * 1.02:.6g}")))
        out.append("\t".join(cells))
    path = tmp_path / "drift.DTA"
    path.write_bytes("\r\n".join(out).encode("latin-1"))
    both = read_spectra(path)
    assert [ds.attrs["drift_corrected"] for ds in both] == [0, 1]
    np.testing.assert_allclose(both[0].z_real, [r for r, _ in raw])
    corrected = read_spectrum(path)
    assert corrected.attrs["drift_corrected"] == True  # noqa: E712 (1 in NetCDF-safe attrs)
    assert "drift-corrected" in describe_file(path)["verdict"]
    np.testing.assert_allclose(corrected.z_real, [r for r, _ in fixed])
    np.testing.assert_allclose(corrected.z_imag, [i for _, i in fixed])


def test_reader_options_in_every_spelling(tmp_path):
    path = tmp_path / "odd.txt"
    write_table(path, "a b c", " ", lambda z: (z.real, -z.imag))
    by_index = read_spectrum(path, columns="0,1,2", imag_sign=-1, delimiter="whitespace")
    by_name = read_spectrum(path, columns=["A", "b", "c"], imag_sign="-1")  # any case
    for ds in (by_index, by_name):
        np.testing.assert_allclose(ds.z_imag, RC_Z.imag, rtol=1e-8)
    with pytest.raises(InputError, match="unknown reader option.*'colums'"):
        read_spectrum(path, colums="0,1,2")
    with pytest.raises(InputError, match="imag_sign = 2; expected"):
        read_spectrum(path, imag_sign=2)
    with pytest.raises(InputError, match="2 columns given"):
        read_spectrum(path, columns="0,1")
    with pytest.raises(FileFormatError, match=r"column 'Zim' not found; columns are \['a'"):
        read_spectrum(path, columns="a,b,Zim")


def test_inspect_cli_every_real_file_and_reader_flags(tmp_path):
    app = typer.Typer()
    app.command()(inspect)
    runner = CliRunner()
    files = [
        *sorted(
            p for p in EXTERNAL.iterdir() if p.suffix not in (".md",) and "LICENSE" not in p.name
        ),
        *NOVOCONTROL_SERIES,
        *(INSTRUMENT_FILES / n for n in ("exampleDataBioLogic.mpt", "exampleDataGamry.DTA")),
        *(MORE_FILES / n for n in ("exampleDataCHInstruments.txt", "exampleDataZPlot.z")),
    ]
    result = runner.invoke(app, [str(p) for p in files], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "novocontrol" in result.output and "versastudio-par" in result.output
    flagged = runner.invoke(
        app, ["--columns", "0,1,2", "--imag-sign", "-1", str(CSV)], env={"COLUMNS": "250"}
    )
    assert flagged.exit_code == 0 and "66" in flagged.output
    bad = runner.invoke(app, ["--imag-sign", "3", str(CSV)])
    assert bad.exit_code == 2 and "imag_sign = 3; expected +1 or -1" in bad.output
