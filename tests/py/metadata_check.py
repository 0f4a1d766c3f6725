#!/usr/bin/env python3
"""WADO-RS metadata through dicomweb-client, checked against the original files with pydicom.

usage: metadata_check.py BASE_URL CA_PEM TOKEN STUDY_UID FILE...

Retrieves the study's metadata, turns each item into a pydicom Dataset (Dataset.from_json) and
compares it with the original file of the same SOP Instance UID: every top-level data element
of the original before Pixel Data must be there with the same value. Prints JSON
{"instances": N, "mismatches": [...], "names": {sop: PatientName}}.
"""
import json
import os
import sys

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient


NUMERIC = ("DS", "IS", "FL", "FD", "US", "SS", "UL", "SL", "UV", "SV")


def numbers(v):
    """A numeric value (or multi-value) as a list of floats: "120" and 120.0 are one number."""
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return [float(x) for x in v]
    if v is None or v == "":
        return []
    return [float(v)]


def main():
    url, ca, token, study = sys.argv[1:5]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    session = requests.Session()
    session.verify = ca
    session.headers["Authorization"] = "Bearer " + token
    client = DICOMwebClient(url=url, session=session)
    items = client.retrieve_study_metadata(study)
    got = {}
    for item in items:
        ds = pydicom.Dataset.from_json(item)
        got[str(ds.SOPInstanceUID)] = ds
    mismatches = []
    names = {}
    for f in sys.argv[5:]:
        orig = pydicom.dcmread(f, stop_before_pixels=True)
        sop = str(orig.SOPInstanceUID)
        if sop not in got:
            mismatches.append(f"{sop}: missing")
            continue
        ds = got[sop]
        names[sop] = str(ds.get("PatientName", ""))
        for elem in orig:
            if elem.tag.group == 0x0002 or elem.tag >= 0x7FE00010 or elem.VR == "SQ":
                continue
            if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
                continue
            if elem.tag not in ds:
                mismatches.append(f"{sop}: {elem.tag} {elem.keyword} missing")
                continue
            a, b = elem.value, ds[elem.tag].value
            if elem.VR in NUMERIC:
                if numbers(a) != numbers(b):
                    mismatches.append(f"{sop}: {elem.tag} {elem.keyword}: {a!r} != {b!r}")
                continue
            if str(a).strip() != str(b).strip():
                mismatches.append(f"{sop}: {elem.tag} {elem.keyword}: {a!r} != {b!r}")
    json.dump({"instances": len(items), "mismatches": mismatches, "names": names}, sys.stdout)


if __name__ == "__main__":
    main()
