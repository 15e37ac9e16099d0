"""What a document's bytes say about its encoding and its DTD, for the two XML readers.

The fast path reads only documents it can vouch for, and feedparser gets none with a
DTD (`read_feedparser.without_dtd`): both rest on a byte scan for "<!DOCTYPE" being
exact, which holds in the ASCII-safe encodings below and nowhere else.
"""

from __future__ import annotations

import codecs
import re

# Any DTD at all: the fast path reads documents without one only, and feedparser
# gets none (`read_feedparser.without_dtd`).
DTD = re.compile(rb"<!(?i:doctype|entity)")
XML_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# Encodings in which every ASCII character is the same single byte and no byte
# sequence decodes to ASCII otherwise: a byte scan for "<!DOCTYPE" is exact in them.
ASCII_SAFE_CODECS = frozenset(
    {
        "utf-8", "ascii", "latin-1", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254",
        "cp1255", "cp1256", "cp1257", "cp1258", "koi8-r", "koi8-u", "euc_jp", "euc_kr",
        "gb2312", "gbk", "gb18030", "big5", "shift_jis", "cp932", "cp949", "cp950",
        "tis-620", "cp874",
    }
    | {f"iso8859-{n}" for n in range(2, 17) if n != 12}
)  # fmt: skip


def codec(name: str) -> str | None:
    """Python's name for an encoding label, to compare labels; None for an unknown one."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None
