#!/usr/bin/env python3
"""Extract the C program that README.md's "Use the library" section shows inline:
readme_block.py README.md OUT.c [SAME_AS.c].

The block is the first ```c fence after the "## Use the library" heading. With SAME_AS.c, the
block must equal that file (the example it is a copy of), so the two cannot drift apart.
Exit 0, 1 (no such block, or it differs), 2 (bad usage)."""
import sys


def extract(text):
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "## Use the library")
        fence = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```c")
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
    except StopIteration:
        return None
    return "".join(lines[fence + 1:end])


def main(argv):
    if len(argv) not in (2, 3):
        print("readme_block.py: need README.md OUT.c [SAME_AS.c]", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        block = extract(f.read())
    if block is None:
        print("readme_block.py: %s: no ```c block under '## Use the library'" % argv[0],
              file=sys.stderr)
        return 1
    if len(argv) == 3:
        with open(argv[2], encoding="utf-8") as f:
            if f.read() != block:
                print("readme_block.py: the block in %s differs from %s (copy one to the "
                      "other)" % (argv[0], argv[2]), file=sys.stderr)
                return 1
    with open(argv[1], "w", encoding="utf-8") as f:
        f.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
