"""pynetdicom SCU for the interop tests: C-ECHO, then C-STORE of each file given (sent from
the file as is, so the data set bytes are the file's), optionally a C-FIND.

usage: store.py PORT CALLING_AE [--find] FILE...
Prints one line per operation: "echo 0x0000", "store 0x0000 <file>", "find <n> 0x0000".
"""
import sys
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import Verification, StudyRootQueryRetrieveInformationModelFind

port, calling = int(sys.argv[1]), sys.argv[2]
args = sys.argv[3:]
find = "--find" in args
files = [a for a in args if a != "--find"]
ae = AE(ae_title=calling)
ae.add_requested_context(Verification)
if find:
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
for f in files:
    meta = dcmread(f, stop_before_pixels=True).file_meta
    ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN")
if not assoc.is_established:
    print("association failed")
    sys.exit(2)
print("echo 0x%04X" % assoc.send_c_echo().Status, flush=True)
for f in files:
    status = assoc.send_c_store(f)
    print("store 0x%04X %s" % (status.Status, f), flush=True)
if find:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = "1.2.3"
    n, last = 0, None
    for status, ident in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
        last = status.Status
        if ident is not None and status.Status in (0xFF00, 0xFF01):
            assert ident.StudyInstanceUID == "1.2.3"
            n += 1
    print("find %d 0x%04X" % (n, last), flush=True)
assoc.release()
