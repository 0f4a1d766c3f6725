#!/usr/bin/env python3
"""WADO-RS frames checked against pydicom's own reading of the original files.

usage: frames_check.py BASE_URL CA_PEM TOKEN FILE...

For each file: asks for all its frames (multipart/related, transfer-syntax=*), splits the
answer into parts and compares each with the frame pydicom gives (native: equal slices of Pixel
Data; encapsulated: pydicom.encaps.generate_frames). Also asks dicomweb-client for frame 1.
Prints a JSON list: {"file", "status", "frames", "equal", "content_types", "client"}.
"""
import json
import os
import sys

import pydicom
import requests
from pydicom.encaps import generate_frames
from dicomweb_client.api import DICOMwebClient
from multipart import split_parts



def expected_frames(ds):
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return list(generate_frames(ds.PixelData, number_of_frames=n))
    data = ds.PixelData
    each = len(data) // n
    return [data[i * each:(i + 1) * each] for i in range(n)]


def main():
    url, ca, token = sys.argv[1:4]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    h = {"Authorization": "Bearer " + token,
         "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    session = requests.Session()
    session.verify = ca
    session.headers["Authorization"] = "Bearer " + token
    client = DICOMwebClient(url=url, session=session)
    out = []
    for f in sys.argv[4:]:
        ds = pydicom.dcmread(f)
        want = expected_frames(ds)
        frames = ",".join(str(i + 1) for i in range(len(want)))
        path = f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/{frames}"
        r = requests.get(f"{url}/{path}", headers=h, verify=ca)
        res = {"file": os.path.basename(f), "status": r.status_code, "frames": len(want)}
        if r.status_code == 200:
            parts = split_parts(r.content, r.headers["Content-Type"])
            res["equal"] = [p[1] == w for p, w in zip(parts, want)] if len(parts) == len(want) else False
            res["content_types"] = sorted({p[0] for p in parts})
            try:
                got = client.retrieve_instance_frames(
                    str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                    frame_numbers=[1], media_types=(("application/octet-stream", "*"),))
                res["client"] = got[0] == want[0]
            except Exception as e:  # the client's own view, reported not raised
                res["client"] = repr(e)[:200]
        else:
            res["text"] = r.text[:300]
        out.append(res)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
