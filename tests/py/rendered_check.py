#!/usr/bin/env python3
"""Compare the relay's rendered images with what pydicom decodes from the same files.

usage: rendered_check.py BASE_URL CA_PEM TOKEN CASES_JSON

Each case: {"file": PATH, "frame": N, "query": {...}, "accept": "image/png", "expect": "mono"|"color"}
The rendered PNG is compared, pixel by pixel, with pydicom's frame put through the same
steps by hand (modality LUT, then the PS3.3 C.11.2.1.2.1 LINEAR window to 0..255), or for
colour with pydicom's RGB frame; a viewport is compared after the same resize with Pillow.
Prints one JSON result per case: status, content type, size, and the difference from pydicom.
"""
import io
import json
import sys

import numpy as np
import pydicom
import requests
from PIL import Image
from pydicom.pixels import apply_modality_lut


def expected(case):
    ds = pydicom.dcmread(case["file"])
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[case["frame"] - 1]
    if ds.SamplesPerPixel == 3:
        return arr.astype(np.float64), ds
    x = apply_modality_lut(arr, ds).astype(np.float64)
    window = case["query"].get("window")
    if window:
        c, w = (float(v) for v in window.split(",")[:2])
    else:
        c, w = float(ds.WindowCenter if not isinstance(ds.WindowCenter, pydicom.multival.MultiValue) else ds.WindowCenter[0]), \
            float(ds.WindowWidth if not isinstance(ds.WindowWidth, pydicom.multival.MultiValue) else ds.WindowWidth[0])
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    y = np.clip(y, 0, 255)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 255 - y
    return y, ds


def main():
    url, ca, token = sys.argv[1:4]
    h = {"Authorization": "Bearer " + token}
    out = []
    for case in json.loads(sys.argv[4]):
        ds = pydicom.dcmread(case["file"], stop_before_pixels=True)
        path = f"{url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
        resource = case.get("resource", "rendered")
        if resource == "frame":
            path += f"/frames/{case['frame']}/rendered"
        elif resource == "thumbnail":
            path += "/thumbnail"
        else:
            path += "/rendered"
        headers = dict(h)
        if case.get("accept"):
            headers["Accept"] = case["accept"]
        r = requests.get(path, params=case["query"], headers=headers, verify=ca)
        res = {"status": r.status_code, "type": r.headers.get("Content-Type"),
               "etag": r.headers.get("ETag"), "text": r.text[:300] if r.status_code != 200 else ""}
        if r.status_code == 200:
            img = Image.open(io.BytesIO(r.content))
            res["format"] = img.format
            res["size"] = list(img.size)
            if case.get("expect"):
                want, full = expected(case)
                got = np.asarray(img.convert("RGB" if want.ndim == 3 else "L"), dtype=np.float64)
                if got.shape != want.shape:
                    # A viewport: compare with pydicom's image put through the same resize.
                    mode = "RGB" if want.ndim == 3 else "L"
                    ref = Image.fromarray(np.round(want).astype(np.uint8), mode=mode)
                    ref = ref.resize(img.size, Image.BILINEAR)
                    want = np.asarray(ref, dtype=np.float64)
                diff = np.abs(got - want)
                res["mean_diff"] = float(diff.mean())
                res["max_diff"] = float(diff.max())
                res["distinct"] = int(len(np.unique(got)))
            if case.get("again"):
                again = requests.get(path, params=case["query"],
                                     headers={**headers, "If-None-Match": r.headers.get("ETag", "")},
                                     verify=ca)
                res["again"] = again.status_code
        out.append(res)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
