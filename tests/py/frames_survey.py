#!/usr/bin/env python3
"""Ask for frame 1 of every instance a reader can find (QIDO-RS), and report the statuses.

usage: frames_survey.py BASE_URL CA_PEM TOKEN

Prints JSON {"statuses": {status: count}, "errors": [first texts of 5xx answers]}.
"""
import json
import os
import sys

import requests


def main():
    url, ca, token = sys.argv[1:4]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    h = {"Authorization": "Bearer " + token}
    found = requests.get(f"{url}/instances", params={"limit": "10000"}, headers=h, verify=ca).json()
    statuses, errors = {}, []
    for d in found:
        st, se, sop = (d[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        r = requests.get(f"{url}/studies/{st}/series/{se}/instances/{sop}/frames/1", headers=h, verify=ca)
        statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
        if r.status_code >= 500:
            errors.append(f"{sop}: {r.text[:200]}")
    json.dump({"statuses": statuses, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
