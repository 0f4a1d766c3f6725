"""multipart/related bodies (RFC 2387) split into their parts, for the DICOMweb checks."""


def split_parts(body, content_type):
    """[(part Content-Type, part bytes)] of a multipart body; asserts each part ends in CRLF."""
    boundary = None
    for p in content_type.split(";"):
        p = p.strip()
        if p.lower().startswith("boundary="):
            boundary = p.split("=", 1)[1].strip('"').encode()
    assert boundary, content_type
    out = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        assert content.endswith(b"\r\n"), "each part ends with CRLF"
        ctype = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-type:"):
                ctype = line.split(b":", 1)[1].strip().decode()
        out.append((ctype, content[:-2]))
    return out
