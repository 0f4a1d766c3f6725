#!/usr/bin/env python3
"""Store instances with STOW-RS, as raw Part 10 bytes or through dicomweb-client.

usage: stow_check.py BASE_URL CA_PEM TOKEN MODE FILE...

MODE: "raw" posts the files' bytes as one multipart/related request (what a gateway does);
"client" reads them with pydicom and stores them with dicomweb-client's store_instances;
"raw-type=X" posts with Content-Type X instead; "stream" posts the same body read from the
files 1 MiB at a time (chunked transfer encoding: no file is ever whole in memory). Prints JSON
{"status", "body", "warnings"}.
"""
import json
import os
import sys
import uuid

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient


def main():
    url, ca, token, mode = sys.argv[1:5]
    files = sys.argv[5:]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    headers = {"Authorization": "Bearer " + token} if token else {}
    if mode == "stream":
        boundary = uuid.uuid4().hex

        def body():
            for f in files:
                yield b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                with open(f, "rb") as fh:
                    while True:
                        chunk = fh.read(1 << 20)
                        if not chunk:
                            break
                        yield chunk
                yield b"\r\n"
            yield b"--" + boundary.encode() + b"--\r\n"

        headers["Content-Type"] = f'multipart/related; type="application/dicom"; boundary={boundary}'
        r = requests.post(f"{url}/studies", data=body(), headers=headers, verify=ca)
        try:
            parsed = r.json()
        except ValueError:
            parsed = r.text
        out = {"status": r.status_code, "body": parsed, "warnings": r.headers.get("Warning", "")}
    elif mode.startswith("raw"):
        boundary = uuid.uuid4().hex
        body = b""
        for f in files:
            with open(f, "rb") as fh:
                data = fh.read()
            body += b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n"
        body += b"--" + boundary.encode() + b"--\r\n"
        ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
        if mode.startswith("raw-type="):
            ctype = mode[len("raw-type="):]
        headers["Content-Type"] = ctype
        r = requests.post(f"{url}/studies", data=body, headers=headers, verify=ca)
        try:
            parsed = r.json()
        except ValueError:
            parsed = r.text
        out = {"status": r.status_code, "body": parsed, "warnings": r.headers.get("Warning", "")}
    else:
        session = requests.Session()
        session.verify = ca
        session.headers.update(headers)
        client = DICOMwebClient(url=url, session=session)
        datasets = [pydicom.dcmread(f) for f in files]
        try:
            ds = client.store_instances(datasets)
            out = {"status": 200, "body": ds.to_json_dict(), "warnings": ""}
        except requests.exceptions.HTTPError as e:
            out = {"status": e.response.status_code, "body": e.response.text, "warnings": ""}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
