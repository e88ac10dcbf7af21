#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Pack the capture initramfs (newc cpio, no external cpio tool needed).

usage: mk_initramfs.py UNPACKED_KERNEL_PACKAGE_DIR OUT.cpio INIT_BINARY PROVOKE_KO

crc7.ko is copied from the kernel package with its signature stripped and its modinfo
"intree=Y" renamed, so that loading it prints both real taint lines ("loading out-of-tree
module taints kernel." and "module verification failed: ... - tainting kernel").
"""
import glob
import lzma
import struct
import sys


def unsign(data, outtree=False):
    magic = b"~Module signature appended~\n"
    if data.endswith(magic):
        ms = data[-len(magic) - 12:-len(magic)]
        siglen = struct.unpack(">I", ms[8:12])[0]
        data = data[:-len(magic) - 12 - siglen]
    if outtree:
        assert b"intree=Y\0" in data
        data = data.replace(b"intree=Y\0", b"xntree=Y\0")
    return data


def newc(entries):
    out = b""
    ino = 1
    for e in entries + [("TRAILER!!!", 0, b"")]:
        name, mode, body = e[:3]
        rdev = e[3] if len(e) > 3 else (0, 0)
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(body), 0, 0, rdev[0], rdev[1], len(nb), 0]
        out += ("070701" + "".join("%08X" % v for v in fields)).encode() + nb
        out += b"\0" * ((4 - len(out) % 4) % 4)
        out += body
        out += b"\0" * ((4 - len(out) % 4) % 4)
        ino += 1
    return out


def module(path):
    data = open(path, "rb").read()
    return lzma.decompress(data) if path.endswith(".xz") else data


kdir, out, init, provoke = sys.argv[1:5]
crc7 = glob.glob(kdir + "/lib/modules/*/kernel/lib/crc7.ko*")[0]
crc8 = glob.glob(kdir + "/lib/modules/*/kernel/lib/crc8.ko*")[0]
entries = [
    ("proc", 0o40755, b""),
    ("sys", 0o40755, b""),
    ("dev", 0o40755, b""),
    ("dev/console", 0o20600, b"", (5, 1)),
    ("init", 0o100755, open(init, "rb").read()),
    ("crc7.ko", 0o100644, unsign(module(crc7), outtree=True)),
    ("crc8.ko", 0o100644, unsign(module(crc8))),
    ("provoke.ko", 0o100644, open(provoke, "rb").read()),
]
open(out, "wb").write(newc(entries))
