#!/usr/bin/env python3
"""WADO-RS metadata through dicomweb-client, checked against the original files with pydicom.

usage: metadata_check.py BASE_URL CA_PEM TOKEN STUDY_UID FILE...

Retrieves the study's metadata, turns each item into a pydicom Dataset (Dataset.from_json) and
compares it with the original file of the same SOP Instance UID: every top-level data element
of the original before Pixel Data must be there with the same value. Binary values given by
reference (BulkDataURI) are fetched from the relay (pydicom calls back for each) and must equal
the original's bytes; so must native Pixel Data (its frames, one part each, concatenated).
Prints JSON {"instances": N, "mismatches": [...], "names": {sop: PatientName},
"bulk": [{"tag", "uri", "parts"}], "pixel_uris": N}.
"""
import json
import os
import sys

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from multipart import split_parts


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
    bulk = []

    def fetch(tag, vr, uri):
        r = session.get(uri, headers={"Accept": 'multipart/related; type="application/octet-stream"'})
        r.raise_for_status()
        parts = [content for _, content in split_parts(r.content, r.headers["Content-Type"])]
        bulk.append({"tag": tag, "uri": uri, "parts": len(parts)})
        return b"".join(parts)

    got = {}
    pixel_uris = 0
    for item in items:
        if "BulkDataURI" in item.get("7FE00010", {}):
            pixel_uris += 1
        ds = pydicom.Dataset.from_json(item, bulk_data_uri_handler=fetch)
        got[str(ds.SOPInstanceUID)] = ds
    mismatches = []
    names = {}
    for f in sys.argv[5:]:
        orig = pydicom.dcmread(f)
        sop = str(orig.SOPInstanceUID)
        if sop not in got:
            mismatches.append(f"{sop}: missing")
            continue
        ds = got[sop]
        names[sop] = str(ds.get("PatientName", ""))
        little = orig.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
        for elem in orig:
            if elem.tag.group == 0x0002 or elem.VR == "SQ":
                continue
            if elem.tag == 0x7FE00010 and orig.file_meta.TransferSyntaxUID.is_compressed:
                continue
            if elem.tag > 0x7FE00010:
                continue
            if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
                # Big-endian words come back little endian (the JSON model's order).
                if little and (elem.tag not in ds or bytes(ds[elem.tag].value) != bytes(elem.value)):
                    mismatches.append(f"{sop}: {elem.tag} {elem.keyword}: binary value differs")
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
    json.dump({"instances": len(items), "mismatches": mismatches, "names": names,
               "bulk": bulk, "pixel_uris": pixel_uris}, sys.stdout)


if __name__ == "__main__":
    main()
