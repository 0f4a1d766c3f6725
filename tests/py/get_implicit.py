"""C-GET of one study as a workstation that accepts CT images only in Implicit VR Little Endian
(pynetdicom). Each data set is written exactly as it arrived on the wire, as OUT/<SOP UID>,
and a line "<SOP UID> <transfer syntax>" is printed for each.

usage: get_implicit.py PORT CALLING_AE CALLED_AE STUDY_UID OUT_DIR
"""
import os
import sys

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

port, calling, called, study, out = sys.argv[1:6]


def on_store(event):
    raw = event.request.DataSet.getvalue()
    sop = event.request.AffectedSOPInstanceUID
    with open(os.path.join(out, sop), "wb") as f:
        f.write(raw)
    print(sop, event.context.transfer_syntax, flush=True)
    return 0x0000


ae = AE(ae_title=calling)
ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
ae.add_requested_context(CTImageStorage, [ImplicitVRLittleEndian])
assoc = ae.associate(
    "127.0.0.1",
    int(port),
    ae_title=called,
    ext_neg=[build_role(CTImageStorage, scp_role=True)],
    evt_handlers=[(evt.EVT_C_STORE, on_store)],
)
if not assoc.is_established:
    sys.exit("association rejected or aborted")
query = Dataset()
query.QueryRetrieveLevel = "STUDY"
query.StudyInstanceUID = study
final = None
for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
    if status:
        final = status.Status
assoc.release()
print("final", hex(final) if final is not None else None, flush=True)
