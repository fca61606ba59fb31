#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for Scalpel's headers (scripts/make-docs.sh).

The headers document themselves in plain // comments (DESIGN.md style). This filter shows them to
Doxygen as documentation without touching the sources: the opening paragraph becomes the file's
documentation (\\file), other // comment lines become ///, and a trailing "code;  // text" becomes
"code;  ///< text" (member documentation). Characters Doxygen would read as commands or HTML
(\\ @ < > & #) are escaped inside comments, so prose like "std::vector<Tensor>" stays prose;
comment lines indented by two or more spaces (the headers' code examples) keep their line breaks.
"""
import re
import sys

ESCAPES = {"\\": "\\\\", "@": "\\@", "<": "\\<", ">": "\\>", "&": "\\&", "#": "\\#", "%": "\\%", "$": "\\$"}


def escape(text):
    return "".join(ESCAPES.get(ch, ch) for ch in text)


def main(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    at_top = True  # still in the file's opening comment block
    for line in lines:
        m = re.match(r"^(\s*)//(?!/) ?(.*)$", line)
        if m:
            indent, text = m.groups()
            if at_top and not out:
                out.append("/// \\file")
            if text.startswith("  ") and text.strip():
                out.append(f"{indent}/// {escape(text)} \\n")  # \n: Doxygen's line break
            else:
                out.append(f"{indent}/// {escape(text)}")
            continue
        at_top = False
        t = re.match(r"^(\s*\S.*?\S)(\s+)//(?!/)\s?(.*)$", line)
        if t and '"' not in t.group(1) and not t.group(1).lstrip().startswith("#"):
            code, space, text = t.groups()
            out.append(f"{code}{space}///< {escape(text)}")
            continue
        out.append(line)
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
