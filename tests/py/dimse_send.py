#!/usr/bin/env python3
"""Send DICOM files to a DIMSE SCP with pynetdicom, their data sets exactly as stored in the files.

    dimse_send.py HOST PORT CALLING_AE CALLED_AE FILE...  [--abort-after N] [--echo]
                  [--tls CERT KEY CA]

One association (contexts for every SOP class / transfer syntax pair found in the files);
files are sent by path (pynetdicom sends the file's encoded data set, dropping group lengths).
Prints one JSON object per file: {"path", "sop" (the SOP Instance UID sent: the data set's),
"status" (int or null), "error" (str or null)}; with --echo, one
{"echo": status} line first. A file pydicom cannot read (no file meta, truncated) is reported
with status null. With --abort-after N the association is aborted (A-ABORT) while the N-th file
(counting from 1) is being sent: pynetdicom sends a part of it, then the abort.
With --tls, DICOM TLS (TLS 1.3, this client certificate and key, the CA to trust; the
relay's certificate is checked against the CA, not against the host name).
Exit status 0 unless the association could not be established.
"""
import json
import sys

from pydicom import dcmread
from pynetdicom import AE, debug_logger  # noqa: F401
from pynetdicom.presentation import build_context


def main():
    args = sys.argv[1:]
    abort_after = None
    echo = False
    if "--abort-after" in args:
        i = args.index("--abort-after")
        abort_after = int(args[i + 1])
        del args[i : i + 2]
    if "--echo" in args:
        args.remove("--echo")
        echo = True
    tls_args = None
    if "--tls" in args:
        import ssl

        i = args.index("--tls")
        cert, key, ca = args[i + 1 : i + 4]
        del args[i : i + 4]
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        context.check_hostname = False
        context.load_cert_chain(cert, key)
        tls_args = (context, None)
    host, port, calling, called = args[0], int(args[1]), args[2], args[3]
    files = args[4:]
    metas = {}
    sops = {}
    pairs = []
    for f in files:
        try:
            ds = dcmread(f, stop_before_pixels=True)
            meta = ds.file_meta
            pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
            metas[f] = pair
            sops[f] = str(ds.get("SOPInstanceUID", meta.MediaStorageSOPInstanceUID))
            if pair not in pairs:
                pairs.append(pair)
        except Exception as e:  # noqa: BLE001 - report any unreadable file
            metas[f] = str(e) or type(e).__name__
    ae = AE(ae_title=calling)
    ae.acse_timeout = 30
    ae.dimse_timeout = 120
    ae.network_timeout = 120
    contexts = [build_context("1.2.840.10008.1.1")]
    for sop, ts in pairs[:127]:
        contexts.append(build_context(sop, [ts]))
    ae.requested_contexts = contexts
    assoc = ae.associate(host, port, ae_title=called, tls_args=tls_args)
    if not assoc.is_established:
        print(json.dumps({"association": "rejected" if assoc.is_rejected else "failed"}))
        sys.stdout.flush()
        sys.exit(2)
    if echo:
        st = assoc.send_c_echo()
        print(json.dumps({"echo": int(st.Status) if "Status" in st else None}))
    for n, f in enumerate(files, start=1):
        m = metas[f]
        if isinstance(m, str):
            print(json.dumps({"path": f, "status": None, "error": "unreadable: " + m}))
            continue
        if abort_after == n:
            # Send part of the instance by hand, then abort.
            _send_partial_then_abort(assoc, f, m)
            print(json.dumps({"path": f, "status": None, "error": "aborted"}))
            sys.stdout.flush()
            return
        try:
            st = assoc.send_c_store(f)
            status = int(st.Status) if "Status" in st else None
            comment = str(st.ErrorComment) if "ErrorComment" in st else None
            print(json.dumps({"path": f, "sop": sops[f], "status": status, "error": comment}))
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"path": f, "status": None, "error": str(e)}))
        sys.stdout.flush()
        if not assoc.is_established:
            break
    if assoc.is_established:
        assoc.release()


def _send_partial_then_abort(assoc, path, pair):
    """A C-STORE-RQ and the first fragments of its data set, then A-ABORT."""
    import io
    import time

    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE

    cx = [c for c in assoc.accepted_contexts if c.abstract_syntax == pair[0]]
    if not cx:
        assoc.abort()
        return
    ds = dcmread(path, stop_before_pixels=True)
    req = C_STORE()
    req.MessageID = 7
    req.AffectedSOPClassUID = pair[0]
    req.AffectedSOPInstanceUID = str(ds.SOPInstanceUID)
    req.Priority = 2
    data = open(path, "rb").read()
    req.DataSet = io.BytesIO(data[132:])
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    # The command and a few data set fragments of 1 KiB, through pynetdicom's own encoder.
    for i, p in enumerate(msg.encode_msg(cx[0].context_id, 1024)):
        assoc.dul.send_pdu(p)
        if i >= 3:
            break
    time.sleep(0.5)
    assoc.abort()


if __name__ == "__main__":
    main()
