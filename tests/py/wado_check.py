#!/usr/bin/env python3
"""Retrieve with WADO-RS: once raw (to compare bytes), once through dicomweb-client.

usage: wado_check.py BASE_URL CA_PEM TOKEN ACCEPT PATH...

Each PATH is relative to BASE_URL (studies/1.2/series/1.3); ACCEPT "" means dicomweb-client's
own default. A PATH ending in /metadata is fetched as DICOM JSON: {"status", "items"}. Prints a JSON list, one per PATH: {"status", "content_type", "parts": [{"sha256",
"content_type"}], "client": [SOPInstanceUID...] or {"error": status}}.
"""
import hashlib
import json
import os
import sys

import requests
from dicomweb_client.api import DICOMwebClient
from multipart import split_parts


def parts_of(body, content_type):
    return [{"sha256": hashlib.sha256(content).hexdigest(), "content_type": ctype}
            for ctype, content in split_parts(body, content_type)]


def metadata(url, ca, token, path):
    headers = {"Accept": "application/dicom+json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    r = requests.get(f"{url}/{path}", headers=headers, verify=ca)
    out = {"status": r.status_code, "text": r.text[:300] if r.status_code != 200 else ""}
    if r.status_code == 200:
        out["items"] = len(r.json())
    return out


def retrieve(url, ca, token, accept, path):
    if path.endswith("/metadata"):
        return metadata(url, ca, token, path)
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    r = requests.get(f"{url}/{path}", headers=headers, verify=ca)
    result = {"status": r.status_code, "content_type": r.headers.get("Content-Type", ""), "text": r.text[:300] if r.status_code != 200 else ""}
    if r.status_code == 200:
        result["parts"] = parts_of(r.content, result["content_type"])
    session = requests.Session()
    session.verify = ca
    if token:
        session.headers["Authorization"] = "Bearer " + token
    client = DICOMwebClient(url=url, session=session)
    segs = path.split("/")
    try:
        kwargs = {"media_types": (("application/dicom", "*"),)}
        if len(segs) == 2:
            got = client.retrieve_study(segs[1], **kwargs)
        elif len(segs) == 4:
            got = client.retrieve_series(segs[1], segs[3], **kwargs)
        else:
            got = [client.retrieve_instance(segs[1], segs[3], segs[5], **kwargs)]
        result["client"] = sorted(str(d.SOPInstanceUID) for d in got)
    except requests.exceptions.HTTPError as e:
        result["client"] = {"error": e.response.status_code}
    return result


def main():
    url, ca, token, accept = sys.argv[1:5]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    json.dump([retrieve(url, ca, token, accept, p) for p in sys.argv[5:]], sys.stdout)


if __name__ == "__main__":
    main()
