#!/usr/bin/python3
"""Build the virtio-blk test disk: an ext4 image made by mkfs.ext4 -d from a directory of
known files (contents are splitmix64 streams, so they are reproducible), and the manifest of
their sha256 sums in `sha256sum` format with `./relative/path` names (what `find .` prints).

Usage: make-disk.py OUTDIR  →  OUTDIR/virtio-disk.ext4.gz, OUTDIR/virtio-disk.sha256,
                               OUTDIR/virtio-disk.size (image size in bytes)
Built with the host's e2fsprogs and a fixed UUID, hash seed and timestamps (inode ctimes still
vary, so images/build.sh caches the output instead of relying on identical rebuilds).
"""
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

IMAGE_MIB = 32
EPOCH = 1700000000
UUID = "5eed0000-7e57-4b1c-8000-000000000001"
MASK = (1 << 64) - 1


def stream(seed, n):
    """splitmix64 output, 8 little-endian bytes per step (same as refvmm-tool)."""
    out = bytearray()
    x = seed & MASK
    while len(out) < n:
        x = (x + 0x9E3779B97F4A7C15) & MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:n])


def files():
    """(relative path, bytes or ('sparse', size, [(offset, data)]))"""
    yield "hello.txt", b"hello from the refvmm virtio-blk test\n"
    yield "empty", b""
    yield "one-byte", b"\x5a"
    yield "sector-511.bin", stream(511, 511)
    yield "block-4096.bin", stream(4096, 4096)
    yield "odd-65537.bin", stream(65537, 65537)
    yield "name with spaces.txt", b"file names with spaces survive\n"
    yield "to-delete.txt", b"the read-write test deletes this file\n"
    yield "to-append.txt", b"the read-write test appends to this file\n"
    yield "data/random-1m.bin", stream(1, 1 << 20)
    yield "data/nested/deeper/deepest/file.bin", stream(12345, 12345)
    for i in range(32):
        yield f"data/many/f{i:03d}", stream(1000 + i, 100 + 37 * i)
    yield "big/random-3m.bin", stream(3, 3 << 20)
    # 4 MiB with data only in the first and last 64 KiB: holes read back as zeros
    yield "big/sparse-4m.bin", ("sparse", 4 << 20, [(0, stream(41, 65536)), ((4 << 20) - 65536, stream(42, 65536))])


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/sbin:/usr/sbin")
    if not mkfs:
        sys.exit("make-disk: mkfs.ext4 not found (install e2fsprogs: ci/install-deps.sh)")
    with tempfile.TemporaryDirectory(prefix="refvmm-disk-") as tmp:
        top = os.path.join(tmp, "root")
        manifest = []
        for rel, content in files():
            path = os.path.join(top, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                if isinstance(content, tuple):
                    _, size, chunks = content
                    f.truncate(size)
                    data = bytearray(size)
                    for off, chunk in chunks:
                        f.seek(off)
                        f.write(chunk)
                        data[off:off + len(chunk)] = chunk
                    content = bytes(data)
                else:
                    f.write(content)
            manifest.append((f"./{rel}", hashlib.sha256(content).hexdigest()))
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                os.utime(os.path.join(dirpath, n), (EPOCH, EPOCH))
        os.utime(top, (EPOCH, EPOCH))
        img = os.path.join(tmp, "disk.ext4")
        with open(img, "wb") as f:
            f.truncate(IMAGE_MIB << 20)
        conf = os.path.join(tmp, "mke2fs.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("[defaults]\n\tblocksize = 4096\n\tinode_size = 256\n\tinode_ratio = 16384\n"
                    "[fs_types]\n\text4 = {\n\t\tfeatures = has_journal\n\t}\n"
                    "\tsmall = {\n\t\tinode_ratio = 16384\n\t}\n")
        env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(EPOCH), MKE2FS_CONFIG=conf)
        # explicit features (our own mke2fs.conf: the host's does not matter);
        # all supported by the guest's 6.1 kernel; metadata_csum needs crc32c in the guest
        subprocess.run([mkfs, "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-i", "16384",
                        "-O", "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,"
                              "extra_isize,sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr",
                        "-L", "refvmm-virtio", "-U", UUID,
                        "-E", f"hash_seed={UUID},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0",
                        "-d", top, img], check=True, env=env)
        with open(img, "rb") as src, open(os.path.join(out, "virtio-disk.ext4.gz.tmp"), "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
        os.replace(os.path.join(out, "virtio-disk.ext4.gz.tmp"), os.path.join(out, "virtio-disk.ext4.gz"))
    with open(os.path.join(out, "virtio-disk.sha256"), "w", encoding="utf-8") as f:
        for rel, digest in sorted(manifest):
            f.write(f"{digest}  {rel}\n")
    with open(os.path.join(out, "virtio-disk.size"), "w", encoding="utf-8") as f:
        f.write(f"{IMAGE_MIB << 20}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
