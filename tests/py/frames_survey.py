#!/usr/bin/env python3
"""Ask for frame 1, the rendered image and the thumbnail of every instance a reader can find
(QIDO-RS), and the rendered image of every study and series they belong to; report the
statuses.

usage: frames_survey.py BASE_URL CA_PEM TOKEN

Prints JSON {"statuses": {"KIND:STATUS": count}, "errors": [first texts of 5xx answers],
"unreadable": [rendered 200 answers Pillow cannot open]} for KIND frames, rendered, thumbnail,
study-rendered, series-rendered.
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
    asks = []
    studies, series = set(), set()
    for d in found:
        st, se, sop = (d[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        base = f"{url}/studies/{st}/series/{se}/instances/{sop}"
        asks += [("frames", sop, base + "/frames/1", None), ("rendered", sop, base + "/rendered", "image/png"),
                 ("thumbnail", sop, base + "/thumbnail", None)]
        studies.add(st)
        series.add((st, se))
    asks += [("study-rendered", st, f"{url}/studies/{st}/rendered", "image/png") for st in sorted(studies)]
    asks += [("series-rendered", se, f"{url}/studies/{st}/series/{se}/rendered", "image/png")
             for st, se in sorted(series)]
    for kind, uid, target, accept in asks:
        r = requests.get(target, headers={**h, **({"Accept": accept} if accept else {})}, verify=ca)
        key = f"{kind}:{r.status_code}"
        statuses[key] = statuses.get(key, 0) + 1
        if r.status_code >= 500:
            errors.append(f"{kind} {uid}: {r.text[:200]}")
        if kind != "frames" and r.status_code == 200:
            try:
                Image.open(io.BytesIO(r.content)).load()
            except Exception as e:  # noqa: BLE001 - any failure to read is the finding
                unreadable.append(f"{kind} {uid}: {e}")
    json.dump({"statuses": statuses, "errors": errors, "unreadable": unreadable}, sys.stdout)


if __name__ == "__main__":
    main()
