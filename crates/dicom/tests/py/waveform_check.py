"""pydicom's view of DICOM waveform objects, for crates/dicom/tests/waveform.rs.

usage: waveform_check.py dump FILE     what pydicom reads in FILE (lines below)
       waveform_check.py list          bundled pydicom test files that have a Waveform Sequence

`dump` prints one fact per line, text as UTF-8 hex (so any name survives), numbers as Python
reprs (shortest round-trip, which Rust parses back to the same f64):

  warning HEX                  a warning pydicom raised while reading or decoding
  attr KEYWORD HEX             str() of a top-level attribute (absent ones are not printed)
  missing WHERE KEYWORD        a type 1 attribute absent or empty, or a type 2 one absent,
                               among those the 12-lead ECG IOD's modules require (PS3.3 A.34.3)
  group G FREQ CHANNELS SAMPLES LABELHEX    (LABELHEX "-" when there is no label)
  label G C HEX                Channel Label, else the Channel Source's Code Meaning
  raw G C V...                 ds.waveform_array-equivalent raw values (multiplex_array as_raw)
  phys G C V...                ds.waveform_array(G)[:, C]
  annotation HEXTEXT CHANNELS POSITIONS     a Waveform Annotation item
  end

Needs pydicom 3.0.2 and numpy (`pip install pydicom==3.0.2 numpy`).
"""
import sys
import warnings

try:
    import numpy  # noqa: F401  (waveform_array needs it)
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array
except ImportError as e:  # the Rust test turns this into a failure with the install line
    print(f"missing module: {e}; install with: pip install pydicom==3.0.2 numpy", file=sys.stderr)
    sys.exit(3)

if pydicom.__version__ != "3.0.2":
    print(f"pydicom {pydicom.__version__} found; the tests expect 3.0.2: pip install pydicom==3.0.2",
          file=sys.stderr)
    sys.exit(3)


def hexs(value):
    return str(value).encode("utf-8").hex()


# (module, type 1 keywords, type 2 keywords) of the 12-lead ECG IOD, top level.
TOP = [
    ("Patient", [], ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"]),
    ("General Study", ["StudyInstanceUID"],
     ["StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"]),
    ("General Series", ["Modality", "SeriesInstanceUID"], ["SeriesNumber"]),
    ("General Equipment", [], ["Manufacturer"]),
    ("Waveform Identification",
     ["InstanceNumber", "ContentDate", "ContentTime", "AcquisitionDateTime"], []),
    ("Acquisition Context", [], ["AcquisitionContextSequence"]),
    ("SOP Common", ["SOPClassUID", "SOPInstanceUID"], []),
    ("Waveform", ["WaveformSequence"], []),
]
GROUP = ["WaveformOriginality", "NumberOfWaveformChannels", "NumberOfWaveformSamples",
         "SamplingFrequency", "ChannelDefinitionSequence", "WaveformBitsAllocated",
         "WaveformSampleInterpretation", "WaveformData"]
CODE = ["CodeValue", "CodingSchemeDesignator", "CodeMeaning"]


def check(ds, where, type1, type2):
    for kw in type1:
        if kw not in ds or ds[kw].value in (None, "", b"") or (
                ds[kw].VR == "SQ" and len(ds[kw].value) == 0):
            print("missing", where, kw)
    for kw in type2:
        if kw not in ds:
            print("missing", where, kw)


def check_channel(ch, where):
    check(ch, where, ["ChannelSourceSequence", "WaveformBitsStored"], [])
    for item in ch.get("ChannelSourceSequence", []):
        check(item, where + " source", CODE, [])
    if "ChannelSensitivity" in ch:
        check(ch, where, ["ChannelSensitivityUnitsSequence", "ChannelSensitivityCorrectionFactor",
                          "ChannelBaseline"], [])
        for item in ch.get("ChannelSensitivityUnitsSequence", []):
            check(item, where + " units", CODE, [])
    if "ChannelTimeSkew" not in ch and "ChannelSampleSkew" not in ch:
        print("missing", where, "ChannelTimeSkew/ChannelSampleSkew")


def label_of(ch):
    label = str(ch.get("ChannelLabel", "") or "").strip()
    if not label:
        sources = ch.get("ChannelSourceSequence", [])
        if len(sources) > 0:
            label = str(sources[0].get("CodeMeaning", "") or "").strip()
    return label


def dump(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(path)
        for kw in ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                   "Modality", "SpecificCharacterSet", "PatientName", "PatientID",
                   "PatientBirthDate", "PatientSex", "AccessionNumber", "InstanceNumber",
                   "SeriesNumber", "AcquisitionDateTime", "ContentDate", "ContentTime",
                   "StudyDate", "StudyTime", "Manufacturer", "InstitutionName", "StationName"]:
            if kw in ds:
                print("attr", kw, hexs(ds[kw].value))
        print("attr", "TransferSyntaxUID", hexs(ds.file_meta.TransferSyntaxUID))
        print("attr", "ImplementationClassUID", hexs(ds.file_meta.ImplementationClassUID))
        for where, type1, type2 in TOP:
            check(ds, where, type1, type2)
        for g, item in enumerate(ds.get("WaveformSequence", [])):
            check(item, f"group {g}", GROUP, [])
            label = item.get("MultiplexGroupLabel")
            print("group", g, repr(float(item.SamplingFrequency)), item.NumberOfWaveformChannels,
                  item.NumberOfWaveformSamples, hexs(label) if label else "-")
            raw = multiplex_array(ds, g, as_raw=True)
            phys = ds.waveform_array(g)
            for c, ch in enumerate(item.ChannelDefinitionSequence):
                check_channel(ch, f"group {g} channel {c}")
                print("label", g, c, hexs(label_of(ch)))
                print("raw", g, c, " ".join(str(int(v)) for v in raw[:, c]))
                print("phys", g, c, " ".join(repr(float(v)) for v in phys[:, c]))
        for item in ds.get("WaveformAnnotationSequence", []):
            channels = ",".join(str(v) for v in item.get("ReferencedWaveformChannels", []))
            positions = item.get("ReferencedSamplePositions")
            if positions is None:
                positions = "-"
            elif isinstance(positions, int):
                positions = str(positions)
            else:
                positions = ",".join(str(v) for v in positions)
            print("annotation", hexs(item.get("UnformattedTextValue", "")), channels or "-",
                  positions, hexs(item.get("TemporalRangeType", "")))
    for w in caught:
        print("warning", hexs(f"{w.category.__name__}: {w.message}"))
    print("end")


def list_waveform_files():
    import os
    import pydicom.data as d
    for p in sorted(d.get_testdata_files() + d.get_charset_files()):
        if not os.path.isfile(p):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # not DICOM, or broken: not a waveform sample either way
            continue
        if "WaveformSequence" in ds:
            print(p)


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"] and len(sys.argv) == 3:
        dump(sys.argv[2])
    elif sys.argv[1:] == ["list"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            list_waveform_files()
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
