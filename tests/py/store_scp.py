#!/usr/bin/env python3
"""A storage SCP (pynetdicom) that refuses chosen instances: a PACS that says no.

    store_scp.py PORT AE_TITLE LOG_FILE [--refuse SOP_INSTANCE_UID=STATUS]...

Accepts Verification and every storage SOP class in every transfer syntax pynetdicom knows.
Each C-STORE appends one line "SOP_INSTANCE_UID STATUS" to LOG_FILE (flushed at once), then is
answered with STATUS (hex, e.g. A900) for a refused UID — with an Error Comment — or 0x0000.
Stores nothing. Runs until killed.
"""
import sys
import time

from pydicom.dataset import Dataset

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification


def main():
    args = sys.argv[1:]
    refuse = {}
    while "--refuse" in args:
        i = args.index("--refuse")
        uid, status = args[i + 1].split("=")
        refuse[uid] = int(status, 16)
        del args[i : i + 2]
    port, title, log_path = int(args[0]), args[1], args[2]
    log = open(log_path, "a", buffering=1)

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        status = refuse.get(uid, 0x0000)
        log.write(f"{uid} {status:04X}\n")
        log.flush()
        if status:
            rsp = Dataset()
            rsp.Status = status
            rsp.ErrorComment = "test SCP refuses this instance"
            return rsp
        return 0x0000

    ae = AE(ae_title=title)
    ae.maximum_associations = 16
    ae.network_timeout = 60
    ae.dimse_timeout = 60
    ae.add_supported_context(Verification)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
