"""pynetdicom C-GET / C-MOVE SCU for the interop tests.

usage: retrieve.py PORT get OUTDIR CLASS_UID...      C-GET; propose storage contexts (Explicit
                                                     VR LE, SCP role) for these classes only
       retrieve.py PORT get-cancel OUTDIR CLASS_UID... C-GET, C-CANCEL after the first pending
       retrieve.py PORT move DESTINATION             C-MOVE to DESTINATION

Received data sets are written raw (as they came off the wire) to OUTDIR/<SOP Instance UID>.
Prints "pending r c f w" per pending response, "store <uid>" per received instance,
"final 0x%04X r c f w" and "failed <uid>" per Failed SOP Instance UID List entry.
"""
import os
import sys
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, build_role
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet as GET,
    StudyRootQueryRetrieveInformationModelMove as MOVE,
)

port, mode = int(sys.argv[1]), sys.argv[2]
ae = AE(ae_title="PYNETDICOM")
roles, handlers = [], []
if mode.startswith("get"):
    outdir, classes = sys.argv[3], sys.argv[4:]
    ae.add_requested_context(GET)
    for uid in classes:
        ae.add_requested_context(uid, ["1.2.840.10008.1.2.1"])
        roles.append(build_role(uid, scp_role=True))

    def on_store(event):
        uid = event.request.AffectedSOPInstanceUID
        with open(os.path.join(outdir, uid), "wb") as f:
            f.write(event.request.DataSet.getvalue())
        print("store %s" % uid, flush=True)
        return 0x0000

    handlers.append((evt.EVT_C_STORE, on_store))
else:
    ae.add_requested_context(MOVE)

assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN", ext_neg=roles, evt_handlers=handlers)
if not assoc.is_established:
    print("association failed")
    sys.exit(2)

q = Dataset()
q.QueryRetrieveLevel = "STUDY"
q.StudyInstanceUID = "1.2.3"


def counts(s):
    return " ".join(
        str(s.get(k, "-"))
        for k in (
            "NumberOfRemainingSuboperations",
            "NumberOfCompletedSuboperations",
            "NumberOfFailedSuboperations",
            "NumberOfWarningSuboperations",
        )
    )


if mode.startswith("get"):
    responses = assoc.send_c_get(q, GET, msg_id=7)
else:
    responses = assoc.send_c_move(q, sys.argv[3], MOVE, msg_id=7)
cancelled = False
for status, ident in responses:
    if not status:
        print("no response (timeout or abort)")
        sys.exit(3)
    if status.Status in (0xFF00, 0xFF01):
        print("pending %s" % counts(status), flush=True)
        if mode == "get-cancel" and not cancelled:
            assoc.send_c_cancel(7, query_model=GET)
            cancelled = True
            print("cancel sent", flush=True)
        continue
    print("final 0x%04X %s" % (status.Status, counts(status)), flush=True)
    if ident is not None and "FailedSOPInstanceUIDList" in ident:
        v = ident.FailedSOPInstanceUIDList
        for uid in [v] if isinstance(v, str) else v:
            print("failed %s" % uid, flush=True)
assoc.release()
