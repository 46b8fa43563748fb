#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Counts a UTS tree a second, independent way, to check the C core's counts.

Usage: uts_check.py TREE

A breadth-first traversal, level by level, with Python's hashlib for the SHA-1 and its own
reading of the rules in uts.h: it shares no code with uts.c and visits the nodes in another
order. Prints "nodes=N leaves=L depth=D", the start of uts-serial's line. Only for trees of a
few hundred thousand nodes at most (it holds a whole level in memory and runs at about a
microsecond per node): the small trees S1 and S3, and T-trees cut short are beyond its purpose.
"""
import hashlib
import math
import struct
import sys

MAX_CHILDREN = 100

# name: (type, shape, b0, seed, gen_mx, q, m, shift_depth), as in uts.c's table.
TREES = {
    "S1": ("geo", "fixed", 4.0, 19, 6, None, None, None),
    "S3": ("bin", None, 20.0, 42, None, 0.124875, 8, None),
}


def prob(node_id):
    # The last four bytes, big-endian, top bit cleared, over 2^31.
    (r,) = struct.unpack(">I", node_id[16:20])
    return (r & 0x7FFFFFFF) / 2147483648.0


def geo_children(tree, node_id, height):
    _, shape, b0, _, gen_mx, _, _, _ = tree
    b = b0
    if height > 0:
        if shape == "fixed":
            b = b0 if height < gen_mx else 0.0
        elif shape == "linear":
            b = b0 * (1.0 - height / gen_mx)
        elif shape == "cyclic":
            b = 0.0 if height > 5 * gen_mx else b0 ** math.sin(2.0 * math.pi * height / gen_mx)
        else:
            b = b0 * float(height) ** (-math.log(b0) / math.log(gen_mx))
    p = 1.0 / (1.0 + b)
    if p == 1.0:
        return 0
    return min(MAX_CHILDREN, int(math.floor(math.log(1.0 - prob(node_id)) / math.log(1.0 - p))))


def num_children(tree, node_id, height):
    kind, _, b0, _, gen_mx, q, m, shift = tree
    if kind == "bin" and height == 0:
        return int(math.floor(b0))
    if kind == "geo" or (kind == "hybrid" and height < shift * gen_mx):
        return geo_children(tree, node_id, height)
    return min(MAX_CHILDREN, m if prob(node_id) < q else 0)


def count(tree):
    root = hashlib.sha1(bytes(16) + struct.pack(">i", tree[3])).digest()
    level, height = [root], 0
    nodes = leaves = depth = 0
    while level:
        nodes += len(level)
        depth = height
        below = []
        for node_id in level:
            k = num_children(tree, node_id, height)
            if k == 0:
                leaves += 1
            for i in range(k):
                below.append(hashlib.sha1(node_id + struct.pack(">i", i)).digest())
        level, height = below, height + 1
    return nodes, leaves, depth


def main():
    if len(sys.argv) != 2 or sys.argv[1].upper() not in TREES:
        sys.exit("usage: uts_check.py {" + ",".join(TREES) + "}")
    nodes, leaves, depth = count(TREES[sys.argv[1].upper()])
    print(f"nodes={nodes} leaves={leaves} depth={depth}")


if __name__ == "__main__":
    main()
