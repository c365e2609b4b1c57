#!/usr/bin/python3
"""Write a reproducible newc cpio archive (owner root, fixed mtime) without needing root.

Usage: mkcpio.py OUT [--dir STAGING] [--node TYPE:MODE:MAJ:MIN:PATH] [--file SRC:PATH:MODE] ...
  --dir   add every file, directory and symlink below STAGING (paths relative to it)
  --node  add a device node: TYPE c|b, MODE octal, e.g. c:0600:5:1:/dev/console
  --file  add one regular file SRC as PATH with octal MODE (parent dirs are added too)
The archive is padded to a multiple of 512 bytes so archives can be concatenated.
"""
import os
import stat
import sys

MTIME = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


class Writer:
    def __init__(self, fh):
        self.fh = fh
        self.ino = 1
        self.seen = set()
        self.off = 0

    def _put(self, data):
        self.fh.write(data)
        self.off += len(data)

    def _pad(self):
        if self.off % 4:
            self._put(b"\0" * (4 - self.off % 4))

    def entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name = name.strip("/")
        if name in self.seen:
            if stat.S_ISDIR(mode):
                return
            raise SystemExit(f"mkcpio: duplicate entry {name}")
        self.seen.add(name)
        raw = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, MTIME, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0]
        self.ino += 1
        self._put(b"070701" + b"".join(b"%08X" % f for f in fields) + raw)
        self._pad()
        self._put(data)
        self._pad()

    def parents(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.seen:
                self.entry(d, stat.S_IFDIR | 0o755, nlink=2)

    def tree(self, top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top)
            names = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
            if rel != ".":
                st = os.lstat(dirpath)
                self.entry(rel, stat.S_IFDIR | stat.S_IMODE(st.st_mode), nlink=2)
            for n in names:
                p = os.path.join(dirpath, n)
                r = n if rel == "." else f"{rel}/{n}"
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    self.entry(r, stat.S_IFLNK | 0o777, os.readlink(p).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        self.entry(r, stat.S_IFREG | stat.S_IMODE(st.st_mode), f.read())
                else:
                    raise SystemExit(f"mkcpio: unsupported file type: {p}")

    def close(self):
        self.entry("TRAILER!!!", 0)
        if self.off % 512:
            self._put(b"\0" * (512 - self.off % 512))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    out = argv[1]
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        w = Writer(fh)
        args = argv[2:]
        while args:
            opt, val = args[0], args[1] if len(args) > 1 else None
            if val is None:
                raise SystemExit(f"mkcpio: {opt} needs a value")
            args = args[2:]
            if opt == "--dir":
                w.tree(val)
            elif opt == "--node":
                typ, mode, maj, mnr, path = val.split(":", 4)
                w.parents(path)
                kind = stat.S_IFCHR if typ == "c" else stat.S_IFBLK
                w.entry(path, kind | int(mode, 8), rdev=(int(maj), int(mnr)))
            elif opt == "--file":
                src, path, mode = val.split(":", 2)
                w.parents(path)
                with open(src, "rb") as f:
                    w.entry(path, stat.S_IFREG | int(mode, 8), f.read())
            else:
                raise SystemExit(f"mkcpio: unknown option {opt}")
        w.close()
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv)
