#!/usr/bin/env python3
"""Ask for frame 1, the rendered image and the thumbnail of every instance a reader can find
(QIDO-RS), and report the statuses.

usage: frames_survey.py BASE_URL CA_PEM TOKEN

Prints JSON {"statuses": {"KIND:STATUS": count}, "errors": [first texts of 5xx answers],
"unreadable": [rendered 200 answers Pillow cannot open]} for KIND frames, rendered, thumbnail.
"""
import io
import json
import os
import sys

import requests
from PIL import Image


def main():
    url, ca, token = sys.argv[1:4]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    h = {"Authorization": "Bearer " + token}
    found = requests.get(f"{url}/instances", params={"limit": "10000"}, headers=h, verify=ca).json()
    statuses, errors, unreadable = {}, [], []
    for d in found:
        st, se, sop = (d[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        base = f"{url}/studies/{st}/series/{se}/instances/{sop}"
        for kind, path, accept in [("frames", "/frames/1", None), ("rendered", "/rendered", "image/png"),
                                   ("thumbnail", "/thumbnail", None)]:
            r = requests.get(base + path, headers={**h, **({"Accept": accept} if accept else {})}, verify=ca)
            key = f"{kind}:{r.status_code}"
            statuses[key] = statuses.get(key, 0) + 1
            if r.status_code >= 500:
                errors.append(f"{kind} {sop}: {r.text[:200]}")
            if kind != "frames" and r.status_code == 200:
                try:
                    Image.open(io.BytesIO(r.content)).load()
                except Exception as e:  # noqa: BLE001 - any failure to read is the finding
                    unreadable.append(f"{kind} {sop}: {e}")
    json.dump({"statuses": statuses, "errors": errors, "unreadable": unreadable}, sys.stdout)


if __name__ == "__main__":
    main()
