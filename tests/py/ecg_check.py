"""Check a recorded DICOM 12-lead ECG against the samples that were streamed.

usage: ecg_check.py RECORDING.dcm EXPECTED.raw [--incomplete]

EXPECTED.raw: int16 little-endian, multiplexed (sample 0 of the 12 leads, then sample 1, ...),
the samples the recording must hold, in µV = sample x sensitivity + baseline per the file.
Prints a JSON summary; exits 1 with the reason on any difference.
"""
import json
import sys

import numpy as np
import pydicom


def main():
    path, raw = sys.argv[1], sys.argv[2]
    want_incomplete = "--incomplete" in sys.argv[3:]
    ds = pydicom.dcmread(path)
    problems = []
    if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.9.1.1":
        problems.append(f"SOP class {ds.SOPClassUID}")
    if ds.Modality != "ECG":
        problems.append(f"modality {ds.Modality}")
    group = ds.WaveformSequence[0]
    labels = [c.ChannelLabel for c in group.ChannelDefinitionSequence]
    want_labels = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    if labels != want_labels:
        problems.append(f"labels {labels}")
    expected = np.fromfile(raw, dtype="<i2").reshape(-1, 12).astype("float")
    for ch, c in enumerate(group.ChannelDefinitionSequence):
        expected[:, ch] = expected[:, ch] * float(c.ChannelSensitivity) * float(
            c.get("ChannelSensitivityCorrectionFactor", 1.0)
        ) + float(c.get("ChannelBaseline", 0.0))
    got = ds.waveform_array(0)
    if got.shape != expected.shape:
        problems.append(f"shape {got.shape} != {expected.shape}")
    elif not np.allclose(got, expected, rtol=0, atol=1e-6):
        bad = int(np.argmax(np.any(np.abs(got - expected) > 1e-6, axis=1)))
        problems.append(f"samples differ first at sample {bad}")
    annotations = [
        str(a.get("UnformattedTextValue", ""))
        for a in ds.get("WaveformAnnotationSequence", [])
    ]
    incomplete = any("INCOMPLETE" in a for a in annotations)
    if incomplete != want_incomplete:
        problems.append(f"incomplete annotation {incomplete}, wanted {want_incomplete}")
    summary = {
        "samples": int(got.shape[0]),
        "frequency": float(group.SamplingFrequency),
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance_number": int(ds.InstanceNumber),
        "problems": problems,
    }
    print(json.dumps(summary))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
