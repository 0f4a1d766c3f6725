#!/usr/bin/env python3
"""Run QIDO-RS searches against a relay with an independent DICOMweb client (dicomweb-client).

usage: qido_check.py BASE_URL CA_PEM TOKEN < searches.json

stdin: a JSON list of searches, each {"level": "studies"|"series"|"instances",
"study": UID?, "series": UID?, "filters": {...}?, "fields": [...]?, "limit": N?, "offset": N?,
"fuzzy": bool?}. stdout: a JSON list, one entry per search: the datasets (DICOM JSON, as the
client parsed them) or {"error": HTTP status}. An empty token searches without credentials.
"""
import json
import os
import sys

import requests
from dicomweb_client.api import DICOMwebClient


def main():
    url, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
    session = requests.Session()
    session.verify = ca
    # requests lets the environment's CA bundle win over the session's; ours is the alliance CA.
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    if token:
        session.headers["Authorization"] = "Bearer " + token
    client = DICOMwebClient(url=url, session=session)
    out = []
    for s in json.load(sys.stdin):
        kwargs = {
            "search_filters": s.get("filters") or None,
            "fields": s.get("fields") or None,
            "limit": s.get("limit"),
            "offset": s.get("offset"),
            "fuzzymatching": s.get("fuzzy"),
        }
        try:
            if s["level"] == "studies":
                r = client.search_for_studies(**kwargs)
            elif s["level"] == "series":
                r = client.search_for_series(study_instance_uid=s.get("study"), **kwargs)
            else:
                r = client.search_for_instances(
                    study_instance_uid=s.get("study"),
                    series_instance_uid=s.get("series"),
                    **kwargs,
                )
            out.append(r)
        except requests.exceptions.HTTPError as e:
            out.append({"error": e.response.status_code, "text": e.response.text})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
