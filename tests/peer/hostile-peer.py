#!/usr/bin/env python3
"""A hostile link partner against dw-pcie-ep, with TAP output.

A fake host speaks the link protocol (docs/link-protocol.md, version 3)
to an EP QEMU run under qtest, and misbehaves in the ways a broken or
malicious peer can: fds it can shrink, sizes it does not have, answers
it never sends.  Each case checks that the EP survives, stays correct,
and says what it did.

usage: tests/peer/hostile-peer.py QEMU_BINARY
"""

import array
import mmap
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HDR = struct.Struct("<BBHIQ")
VERSION = 3
(HELLO, CFG_RD, CFG_WR, MEM_RD, MEM_WR, CPL, UP, DOWN, HOT_RESET, SHM,
 MAP_RD, REVOKE, CFG_IMAGE) = range(1, 14)
PAYLOAD = {HELLO: None, CFG_RD: 0, CFG_WR: 4, MEM_RD: 0, MEM_WR: None,
           CPL: None, UP: 48, DOWN: 0, HOT_RESET: 0, SHM: 16, MAP_RD: 8,
           REVOKE: 0, CFG_IMAGE: None}
DBI, ATU, ELBI, WINDOW, RAM = 0x0c000000, 0x0c002000, 0x0c003000, 0x0d000000, 0x40000000
HOST_TARGET = 0x200000      # the window's PCI target, in the fake host's RAM
# The EP's posted writes off, but for cases that set their own (case.posted)
NO_POSTED = "posted-write-latency-ns=0"
F_ADD_SEALS, F_SEAL_SHRINK, F_SEAL_GROW = 1033, 0x2, 0x4


def split_messages(buf):
    """The whole messages at the start of @buf, as (type, flags, tag, len,
    addr, payload) tuples, and the bytes left over."""
    msgs = []
    while len(buf) >= HDR.size:
        typ, flags, tag, length, addr = HDR.unpack_from(buf)
        plen = PAYLOAD.get(typ)
        plen = length if plen is None else plen
        if len(buf) < HDR.size + plen:
            break
        msgs.append((typ, flags, tag, length, addr, buf[HDR.size:HDR.size + plen]))
        buf = buf[HDR.size + plen:]
    return msgs, buf


class EP:
    """The EP QEMU under qtest, driven over stdio."""

    def __init__(self, qemu, sock, log, ram="memory-backend-memfd,id=ram,size=128M",
                 timeout_ms=500, device="dw-pcie-ep",
                 posted=NO_POSTED):
        args = [qemu, "-display", "none", "-nic", "none", "-monitor", "none",
                "-serial", "none", "-accel", "qtest", "-qtest", "stdio",
                "-M", "virt,gic-version=3", "-object", ram,
                "-machine", "memory-backend=ram",
                "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
                # Posted writes off: under qtest the virtual clock stands
                # still, so a buffered write would never drain by time;
                # the qtests' posted/* cases cover the buffer.
                "-device", f"{device},id=ep,chardev=link,link-timeout-ms={timeout_ms}"
                f",{posted}",
                "-d", "guest_errors,unimp"]
        self.log = log
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log, text=True)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        while True:
            reply = self.p.stdout.readline()
            if not reply:
                raise EOFError(f"the EP QEMU died (exit {self.p.wait()})")
            if not reply.startswith("IRQ"):
                return reply.split()

    def readl(self, addr):
        return int(self.cmd(f"readl 0x{addr:x}")[1], 16)

    def writel(self, addr, val):
        self.cmd(f"writel 0x{addr:x} 0x{val:x}")

    def alive(self):
        return self.p.poll() is None and self.readl(DBI) & 0xffff == 0x16c3

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.terminate()
            self.p.wait(10)

    def map_window(self):
        """The EP's driver: the window's first 64 KiB onto host RAM."""
        for off, val in ((0x08, WINDOW), (0x0c, 0), (0x10, WINDOW + 0xffff),
                         (0x20, 0), (0x14, HOST_TARGET), (0x18, 0),
                         (0x00, 0), (0x04, 0x80000000)):
            self.writel(ATU + off, val)


class Peer:
    """A fake host that answers only what its callbacks say."""

    def __init__(self, path, features=1, read=True, hello=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(200):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.02)
        self.lock = threading.Lock()
        self.seen = []
        self.cpls = []
        self.cpl_data = {}      # tag: (status, payload) of the last CPL
        self.reads = []         # (addr, len) of each MEM_RD
        self.on = {}
        self.closed = threading.Event()
        if hello is None:
            self.send(HELLO, 0, 12, 0, struct.pack("<IHHI", 0x4c455044, VERSION, 2, features))
        elif hello:
            self.s.sendall(hello)
        if read:
            threading.Thread(target=self.receive, daemon=True).start()

    def send(self, typ, tag, length, addr, payload=b"", fds=None, flags=0):
        msg = HDR.pack(typ, flags, tag, length, addr) + payload
        with self.lock:
            if fds:
                self.s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", fds))])
            else:
                self.s.sendall(msg)

    def receive(self):
        buf = b""
        while True:
            try:
                data = self.s.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed.set()
                return
            msgs, buf = split_messages(buf + data)
            for typ, flags, tag, length, addr, payload in msgs:
                self.seen.append(typ)
                if typ == CPL:
                    self.cpls.append((tag, flags, length))
                    self.cpl_data[tag] = (flags, payload)
                elif typ == MEM_RD:
                    self.reads.append((addr, length))
                handler = self.on.get(typ)
                if handler:
                    handler(self, tag, length, addr, payload)

    def count(self, typ):
        return self.seen.count(typ)


def answer_mem_rd(peer, tag, length, addr, payload):
    peer.send(CPL, tag, length, 0, b"\x5a" * length)


def answer_map_rd(extents):
    def handler(peer, tag, length, addr, payload):
        data = b"".join(struct.pack("<QQQII", *e) for e in extents)
        peer.send(CPL, tag, len(data), 0, data)
    return handler


def answer_revoke(peer, tag, length, addr, payload):
    peer.send(CPL, tag, 0, 0)


def memfd(size, seal):
    fd = os.memfd_create("hostile-peer", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seal:
        import fcntl
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
    return fd


def link_up(ep, peer):
    ep.writel(ELBI, 1)
    for _ in range(200):
        if ep.readl(ELBI + 4) == 1:
            return True
        time.sleep(0.01)
    return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Case:
    """One case's EP and fake host.  The EP's link-timeout-ms is short
    (500), for the cases that wait for it; a case whose peer answers, but
    may be slow on a loaded machine, sets its own (case.timeout_ms)."""

    def __init__(self, qemu, tmp, name, timeout_ms=500, hello=None,
                 device="dw-pcie-ep", posted=NO_POSTED):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.log = open(os.path.join(tmp, f"{name}.log"), "w+")
        self.ep = EP(qemu, self.sock, self.log, timeout_ms=timeout_ms,
                     device=device, posted=posted)
        self.peer = Peer(self.sock, hello=hello)
        self.peer.on[MEM_RD] = answer_mem_rd
        self.peer.on[REVOKE] = answer_revoke

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self):
        self.ep.stop()
        self.peer.s.close()


# ---------------------------------------------------------------------------


def case_unsealed_fd(c):
    """An fd the peer can shrink is refused: no SIGBUS when it does."""
    fd = memfd(1 << 20, seal=False)
    c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20), fds=[fd])
    c.peer.on[MAP_RD] = answer_map_rd([(0, 0x10000, 0, 0, 1)])
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    first = c.ep.readl(WINDOW)
    os.ftruncate(fd, 0)
    again = c.ep.readl(WINDOW + 4)
    assert first == again == 0x5a5a5a5a, f"message path reads {first:#x} {again:#x}"
    assert c.ep.alive(), "EP alive"
    assert "memfd sealed against shrinking" in c.stderr(), "EP says why"


def case_sealed_fd_mapped(c):
    """The positive control: a sealed memfd is mapped into the window."""
    mm = sealed_block(c)
    c.peer.on[MAP_RD] = answer_map_rd([(0, 0x10000, 0, 0, 1)])
    assert link_up(c.ep, c.peer), "link up"
    reads, word = window_after_map_rd(c)
    assert word == 0x600dcafe, "window reads the peer's RAM"
    assert c.peer.count(MEM_RD) == reads, "no message for a mapped page"
    mm.close()


case_sealed_fd_mapped.timeout_ms = 10000


def case_huge_declared_size(c):
    """A peer that declares 16 x 1 TiB costs the EP nothing."""
    before = rss_kib(c.ep.p.pid)
    for i in range(16):
        fd = memfd(1 << 40, seal=True)
        c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", i, 0, 1 << 40), fds=[fd])
        os.close(fd)
    assert link_up(c.ep, c.peer), "link up"
    grown = rss_kib(c.ep.p.pid) - before
    assert grown < 32 * 1024, f"EP RSS grew by {grown} KiB"


def case_bad_extents(c):
    """Extents out of the block, out of the window, unaligned, unknown
    blocks or out of order: nothing is mapped, every read is correct."""
    fd = memfd(1 << 20, seal=True)
    c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20), fds=[fd])
    bad = [[(0, 0x10000, 1 << 20, 0, 1)],           # past the block
           [(0, 1 << 30, 0, 0, 1)],                 # past the window
           [(0x800, 0x1000, 0, 0, 1)],              # unaligned
           [(0, 0x1000, 0, 7, 1)],                  # a block never sent
           [(0x2000, 0x1000, 0, 0, 1), (0, 0x1000, 0, 0, 1)]]  # out of order
    assert link_up(c.ep, c.peer), "link up"
    for extents in bad:
        c.peer.on[MAP_RD] = answer_map_rd(extents)
        c.ep.writel(ATU + 0x14, HOST_TARGET)    # a new translation: ask again
        c.ep.map_window()
        for off in (0, 0x800, 0x2000):
            assert c.ep.readl(WINDOW + off) == 0x5a5a5a5a, f"read at {off:#x}"
    assert c.ep.alive(), "EP alive"
    said = c.stderr().count("bad extent")
    assert said == len(bad), f"{said} of {len(bad)} bad answers reported"


def case_map_rd_ignored(c):
    """A peer that never answers MAP_RD costs one timeout, not one per access."""
    fd = memfd(1 << 20, seal=True)
    c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20), fds=[fd])
    c.peer.on[MAP_RD] = lambda *a: None
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    t0 = time.monotonic()
    for i in range(20):
        c.ep.writel(WINDOW + 4 * i, i)
    took = time.monotonic() - t0
    assert c.peer.count(MAP_RD) == 1, f"{c.peer.count(MAP_RD)} MAP_RDs"
    assert "did not answer a MAP_RD" in c.stderr(), "EP says why"
    print(f"# 20 window writes with a silent peer took {took:.2f} s")


def case_revoke_ignored(c):
    """A peer that does not confirm a REVOKE loses the link; the EP lives."""
    c.peer.on[REVOKE] = lambda *a: None
    c.peer.on[MAP_RD] = answer_map_rd([])
    assert link_up(c.ep, c.peer), "link up"
    # The peer asks about a BAR: now it holds (empty) translations.
    c.peer.send(MAP_RD, 1, 8, 0x10000000, struct.pack("<Q", 0x1000))
    time.sleep(0.1)
    c.ep.writel(ATU + 0x100 + 0x14, RAM)        # an inbound iATU write
    assert c.peer.closed.wait(5), "the EP closed the link"
    assert "did not confirm" in c.stderr(), "EP says why"
    assert c.ep.alive(), "EP alive"


def case_unanswered_posted_revokes(c):
    """Posted REVOKEs the peer never answers do not use up the tags."""
    c.peer.on[REVOKE] = lambda *a: None
    c.peer.on[MAP_RD] = answer_map_rd([])
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    for _ in range(80):
        c.peer.send(MAP_RD, 1, 8, 0x10000000, struct.pack("<Q", 0x1000))
        # A host config write to the Command register: a posted REVOKE
        c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
        time.sleep(0.001)
    time.sleep(0.6)                 # past the link's timeout
    reads = c.peer.count(MEM_RD)
    assert c.ep.readl(WINDOW) == 0x5a5a5a5a, "window read still answered"
    assert c.peer.count(MEM_RD) == reads + 1, "the read went out"


def case_window_round_trip_lost(c):
    """With posted writes, a write by message sends a round trip behind
    it (a MAP_RD of no bytes), one at a time.  One the peer never answers
    is given up after link-timeout-ms (2 s here): a write by message
    before then sends none, the first after it sends another, and the
    link stays up."""
    sealed_block(c)
    trips = []

    def on_map_rd(peer, tag, length, addr, payload):
        if struct.unpack("<Q", payload)[0]:
            peer.send(CPL, tag, 0, 0)       # no RAM: writes go by message
            return
        trips.append(tag)
        if len(trips) > 1:                  # the first is never answered
            peer.send(CPL, tag, 0, 0)

    def wait_trips(n, secs):
        for _ in range(int(secs * 100)):
            if len(trips) >= n:
                break
            time.sleep(0.01)
        return len(trips)

    c.peer.on[MAP_RD] = on_map_rd
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    # One write deep: each write drains the one before it
    t0 = time.monotonic()
    c.ep.writel(WINDOW, 0)
    c.ep.writel(WINDOW + 4, 1)
    assert wait_trips(1, 1.5) == 1, "a round trip behind the first write"
    time.sleep(max(0.0, t0 + 1.2 - time.monotonic()))
    c.ep.writel(WINDOW + 8, 2)              # 0.6 of the timeout
    soon = time.monotonic() - t0
    time.sleep(0.1)
    assert len(trips) == 1 or soon >= 2.0, \
        f"{len(trips)} round trips {soon:.2f} s in, inside the timeout"
    time.sleep(max(0.0, t0 + 2.4 - time.monotonic()))
    c.ep.writel(WINDOW + 12, 3)
    assert wait_trips(2, 5) == 2, f"{len(trips)} round trips after the timeout"
    assert c.peer.count(MEM_WR) == 3, f"{c.peer.count(MEM_WR)} writes sent"
    assert c.ep.readl(ELBI + 4) == 1 and not c.peer.closed.is_set(), \
        "link still up"


case_window_round_trip_lost.timeout_ms = 2000
case_window_round_trip_lost.posted = \
    "posted-write-latency-ns=1000000,posted-write-depth=1"


def case_revoke_once(c):
    """A REVOKE that the peer completed is not sent again for nothing."""
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(MAP_RD, 1, 8, 0x10000000, struct.pack("<Q", 0x1000))
    c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
    for _ in range(500):
        if c.peer.count(REVOKE):
            break
        time.sleep(0.01)
    # Our completion is on its way before the next writes: give it time.
    time.sleep(0.3)
    for _ in range(9):
        c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
    c.ep.readl(DBI)         # the EP has served what came before
    time.sleep(0.2)
    assert c.peer.count(REVOKE) == 1, f"{c.peer.count(REVOKE)} REVOKEs"


case_revoke_once.timeout_ms = 10000


def case_cfg_address_alias(c):
    """A config request beyond the 4 KiB of config space is malformed
    (0x1_0000_0010 used to read offset 0x10)."""
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(CFG_RD, 3, 4, 0x100000010)
    assert c.peer.closed.wait(5), "the EP closed the link"
    assert c.peer.count(CPL) == 0, "the EP answered it"
    assert "malformed message" in c.stderr(), "EP says why"
    assert c.ep.alive(), "EP alive"


def case_quick_reconnect(c):
    """A host that reconnects at once still gets UP on its new connection."""
    assert link_up(c.ep, c.peer), "link up"
    for _ in range(200):
        if c.peer.count(UP):
            break
        time.sleep(0.01)
    assert c.peer.count(UP) == 1, "UP on the first connection"
    for i in range(5):
        # The next host is in the listen queue with its HELLO sent before
        # the last one goes: the EP sees the close and the new HELLO at once.
        nxt = Peer(c.sock)
        c.peer.s.shutdown(socket.SHUT_RDWR)     # wakes its reader too
        c.peer.s.close()
        c.peer = nxt
        for _ in range(300):
            if c.peer.count(UP):
                break
            time.sleep(0.01)
        assert c.peer.count(UP) == 1, f"UP on reconnection {i + 1}"
    assert c.ep.alive(), "EP alive"


def wait_until(pred, secs=2):
    """Poll @pred every 10 ms for up to @secs: whether it came true."""
    for _ in range(int(secs * 100)):
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def cfg_read_byte(c, tag, offset):
    """A 1-byte CFG_RD from the peer: its completion's payload, or None
    after 2 s (the peer's CPL handler is replaced)."""
    got = {}
    c.peer.on[CPL] = lambda peer, t, length, addr, payload: got.update({t: payload})
    c.peer.send(CFG_RD, tag, 1, offset)
    for _ in range(200):
        if tag in got:
            break
        time.sleep(0.01)
    return got.get(tag)


def case_requests_need_l0(c):
    """Config requests while the EP's LTSSM is disabled are Unsupported
    Requests; with the link in L0 (the positive control) they are served."""
    c.peer.send(CFG_WR, 0, 1, 0x3c, struct.pack("<I", 0x5a))
    val = cfg_read_byte(c, 7, 0x3c)
    assert val == b"\xff", f"CFG_RD before L0 reads all ones, not {val}"
    assert c.ep.readl(DBI + 0x3c) & 0xff == 0, "CFG_WR before L0 is dropped"
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(CFG_WR, 0, 1, 0x3c, struct.pack("<I", 0x5a))
    assert cfg_read_byte(c, 8, 0x3c) == b"\x5a", "served in L0"


def case_hot_reset_needs_l0(c):
    """A HOT_RESET while the EP's LTSSM is disabled resets nothing (it
    used to reset the non-sticky registers the EP's driver had set);
    in L0 (the positive control) it does."""
    c.ep.writel(DBI + 0x3c, 0x5a)
    c.peer.send(HOT_RESET, 0, 0, 0)
    # Served after the HOT_RESET; all ones: the link was out of L0 for both
    val = cfg_read_byte(c, 9, 0x3c)
    assert val == b"\xff", f"the CFG_RD behind it read {val}"
    assert c.ep.readl(DBI + 0x3c) & 0xff == 0x5a, "kept before L0"
    assert link_up(c.ep, c.peer), "link up"
    c.ep.writel(DBI + 0x3c, 0x5a)
    c.peer.send(HOT_RESET, 0, 0, 0)
    assert wait_until(lambda: c.ep.readl(DBI + 0x3c) & 0xff == 0), "reset in L0"
    assert c.ep.alive(), "EP alive"


def case_hot_reset_addr(c):
    """HOT_RESET's addr: bit 0 takes the LTSSM through Hot Reset (0x1f,
    link-up bits 0) until the host's next request; without it (other
    bits set) only the non-sticky registers reset and the LTSSM stays in
    L0 (0x11)."""
    assert link_up(c.ep, c.peer), "link up"
    c.ep.writel(DBI + 0x3c, 0x5a)
    # No request to wait with: the next one would end a pulse by itself
    c.peer.send(HOT_RESET, 0, 0, 0xfffffffffffffffe)
    assert wait_until(lambda: c.ep.readl(DBI + 0x3c) & 0xff == 0), \
        "non-sticky reset"
    assert c.ep.readl(DBI + 0x728) & 0x3f == 0x11, "no Hot Reset for bit 0 clear"
    assert c.ep.readl(ELBI + 4) == 1, "the link stays up for bit 0 clear"
    c.peer.send(HOT_RESET, 0, 0, 1)
    assert wait_until(lambda: c.ep.readl(DBI + 0x728) & 0x3f == 0x1f), \
        "Hot Reset for bit 0"
    assert c.ep.readl(ELBI + 4) == 0, "link-up bit 0 in Hot Reset"
    assert cfg_read_byte(c, 11, 0x3c) == b"\0", "a request is served"
    assert c.ep.readl(DBI + 0x728) & 0x3f == 0x11, "and it ended Hot Reset"
    assert c.ep.readl(ELBI + 4) == 1, "link up again"


def case_peer_stops_reading(c):
    """A host that stops reading cannot hang the EP: the link goes down
    (the peer read nothing, or the output queue filled) and the EP goes on."""
    c.peer.s.close()
    c.peer = Peer(c.sock, features=0, read=False)
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    done = threading.Event()

    def flood():
        try:
            for _ in range(40):         # 2.5 MiB of 8-byte MEM_WRs
                c.ep.cmd(f"memset 0x{WINDOW:x} 0x10000 0x5a")
        finally:
            done.set()
    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(60), "the EP still takes commands while the host reads nothing"
    for _ in range(500):
        if c.ep.readl(ELBI + 4) != 1:
            break
        time.sleep(0.01)
    assert c.ep.readl(ELBI + 4) != 1, "the link went down"
    err = c.stderr()
    assert "has read nothing for 500 ms" in err or "output queue is full" in err, \
        "EP says why"
    assert c.ep.alive(), "EP alive"



class SlowReader(Peer):
    """A fake host that reads CHUNK bytes every PAUSE seconds, and only
    counts what it gets."""

    def __init__(self, path, chunk, pause):
        super().__init__(path, features=0, read=False)
        self.got = 0
        self.chunk, self.pause = chunk, pause
        threading.Thread(target=self.trickle, daemon=True).start()

    def trickle(self):
        while True:
            try:
                data = self.s.recv(self.chunk)
            except OSError:
                data = b""
            if not data:
                self.closed.set()
                return
            self.got += len(data)
            time.sleep(self.pause)


def stream_to_slow_reader(c, chunk, pause, blocks):
    """Give the case a SlowReader host, and have qtest write @blocks of
    64 KiB through the window in 8-byte writes: the bytes the host has
    read before, and how many it must get (the messages' size)."""
    c.peer.s.close()
    c.peer = SlowReader(c.sock, chunk, pause)
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    time.sleep(0.2)
    start = c.peer.got
    for _ in range(blocks):
        c.ep.cmd(f"memset 0x{WINDOW:x} 0x10000 0x5a")
    return start, start + blocks * 0x10000 // 8 * (HDR.size + 8)


def case_slow_reader_loses_nothing(c):
    """qtest streaming 4 MiB of 8-byte writes to a host that reads slowly
    (4 MiB/s) waits for room: nothing is lost and the link stays up (the
    queue used to fill and take the link down)."""
    start, want = stream_to_slow_reader(c, 4096, 0.001, 64)
    for _ in range(3000):
        if c.peer.got >= want:
            break
        time.sleep(0.01)
    assert c.peer.got >= want, f"the host got {c.peer.got - start} of {want - start} bytes"
    assert c.ep.readl(ELBI + 4) == 1, "the link is still up"
    assert "taking the link down" not in c.stderr(), "the EP kept the link"


case_slow_reader_loses_nothing.timeout_ms = 5000



def case_steady_slow_reader(c):
    """A host that reads steadily but slowly (100 KB/s, 4 KiB at a time)
    keeps the link: it reads, though the socket stays too full to take
    more for longer than the link's timeout (the link used to go down)."""
    start, want = stream_to_slow_reader(c, 4096, 4096 / 100000, 3)
    deadline = time.monotonic() + 30
    while c.peer.got < want and time.monotonic() < deadline and \
            c.ep.readl(ELBI + 4) == 1:
        time.sleep(0.1)
    assert c.peer.got >= want, f"the host got {c.peer.got - start} of {want - start} bytes"
    assert c.ep.readl(ELBI + 4) == 1, "the link is still up"


case_steady_slow_reader.timeout_ms = 2000

def case_last_words(c):
    """A host that sends, then closes at once, is heard out: its last
    write lands, though the EP's own writes already fail (the EP used to
    drop the link, and what it had not read yet, at the first failure)."""
    assert link_up(c.ep, c.peer), "link up"
    c.ep.writel(DBI + 0x8bc, 1)                 # MISC_CONTROL_1.DBI_RO_WR_EN
    c.ep.writel(DBI + 0x1000 + 0x10, 0xfff)     # DBI2: BAR0 is 4 KiB
    c.ep.writel(DBI + 0x8bc, 0)
    for off, val in ((0x14, RAM + 0x100000), (0x18, 0), (0x00, 0),
                     (0x04, 0xc0080000)):       # inbound 0: BAR0 -> EP RAM
        c.ep.writel(ATU + 0x100 + off, val)
    c.ep.writel(RAM + 0x100000, 0)
    c.peer.send(CFG_WR, 0, 4, 0x10, struct.pack("<I", 0x10000000))
    c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
    # Each CFG_WR has the EP answer with an image: it is writing.
    burst = b"".join(HDR.pack(CFG_WR, 0, 0, 1, 0x3c) + struct.pack("<I", i & 0xff)
                     for i in range(4000))
    last = HDR.pack(MEM_WR, 0, 0, 4, 0x10000000) + struct.pack("<I", 0x600dcafe)
    with c.peer.lock:
        c.peer.s.sendall(burst + last)
    c.peer.s.shutdown(socket.SHUT_RDWR)
    c.peer.s.close()
    for _ in range(500):
        if c.ep.readl(RAM + 0x100000) == 0x600dcafe:
            break
        time.sleep(0.01)
    assert c.ep.readl(RAM + 0x100000) == 0x600dcafe, "the host's last write landed"
    for _ in range(500):
        if c.ep.readl(ELBI + 4) != 1:
            break
        time.sleep(0.01)
    assert c.ep.readl(ELBI + 4) != 1, "then the link went down"
    assert c.ep.alive(), "EP alive"


case_last_words.timeout_ms = 5000

# ---------------------------------------------------------------------------
# Bad messages, one per row of docs/bad-input.md's first table that has no
# case of its own: each either takes the link down with the message the
# table quotes, or is ignored with the link still serving requests.


def hello(magic=0x4c455044, version=VERSION, role=2, length=12, features=1):
    body = struct.pack("<IHHI", magic, version, role, features)[:length]
    return HDR.pack(HELLO, 0, 0, length, 0) + body


def shm_fd_msg(shm_id, size):
    return (SHM, 0, 0, 16, 0, struct.pack("<IIQ", shm_id, 0, size),
            [memfd(max(size, 4096), seal=True)])


# name: (what it is, HELLO bytes or None for a good one, messages as
# (type, flags, tag, len, addr, payload[, fds]), the stderr text of the
# link going down, or None: the link stays up)
BAD_MESSAGES = {
    "flags_outside_cpl": ("a MEM_WR with flags set", None,
                          [(MEM_WR, 1, 0, 4, 0x10000000, b"\0" * 4)],
                          "malformed message"),
    "fixed_length_wrong": ("a DOWN that says it carries 4 bytes", None,
                           [(DOWN, 0, 0, 4, 0, b"\0" * 4)], "malformed message"),
    "cfg_length_3": ("a 3-byte CFG_RD", None, [(CFG_RD, 0, 1, 3, 0, b"")],
                     "malformed message"),
    "mem_length_0": ("an empty MEM_WR", None, [(MEM_WR, 0, 0, 0, 0, b"")],
                     "malformed message"),
    "mem_length_huge": ("a MEM_RD of 5000 bytes", None,
                        [(MEM_RD, 0, 1, 5000, 0, b"")], "malformed message"),
    "mem_wr_length_huge": ("a MEM_WR of 5000 bytes", None,
                           [(MEM_WR, 0, 0, 5000, 0, b"")], "malformed message"),
    "cpl_length_huge": ("a CPL of 5000 bytes", None,
                        [(CPL, 0, 1, 5000, 0, b"")], "malformed message"),
    "up_length_wrong": ("an UP of 40 bytes", None,
                        [(UP, 0, 0, 40, 0, b"\0" * 40)], "malformed message"),
    "shm_length_wrong": ("an SHM of 8 bytes", None,
                         [(SHM, 0, 0, 8, 0, b"\0" * 8)], "malformed message"),
    "map_rd_length_wrong": ("a MAP_RD of 4 bytes", None,
                            [(MAP_RD, 0, 1, 4, 0, b"\0" * 4)],
                            "malformed message"),
    "hello_length_wrong": ("a HELLO of 10 bytes",
                           HDR.pack(HELLO, 0, 0, 10, 0) + bytes(10), [],
                           "malformed message"),
    "cfg_image_to_ep": ("a CFG_IMAGE sent to the EP", None,
                        [(CFG_IMAGE, 0, 0, 12, 0, b"\0" * 12)],
                        "malformed message"),
    "before_hello": ("a DOWN before any HELLO", b"", [(DOWN, 0, 0, 0, 0, b"")],
                     "message before HELLO"),
    "hello_magic": ("a HELLO with the wrong magic", hello(magic=0x12345678), [],
                    "does not speak the endpoint link protocol"),
    "hello_same_role": ("a HELLO from another EP", hello(role=1), [],
                        "same role (EP or host)"),
    "hello_short_v3": ("a version-3 HELLO of 8 bytes", hello(length=8), [],
                       "HELLO has the wrong length"),
    "shm_without_fd": ("an SHM with no file descriptor", None,
                       [(SHM, 0, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20))],
                       "SHM without a file descriptor"),
    "shm_bad_id": ("an SHM numbered 16", None, [shm_fd_msg(16, 1 << 20)],
                   "malformed SHM"),
    "shm_size_0": ("an SHM of 0 bytes", None, [shm_fd_msg(0, 0)],
                   "malformed SHM"),
    "cpl_status_undefined": ("a CPL whose status is 0xff", None,
                             [(CPL, 0xff, 1, 0, 0, b"")], "malformed message"),
    "cpl_unknown_tag": ("a CPL for a tag never used", None,
                        [(CPL, 0, 0x1234, 4, 0, b"\0" * 4)], None),
    "hello_features": ("a HELLO with feature bits nobody knows",
                       hello(features=0xfffffff1), [], None),
    "link_events_to_ep": ("UP and DOWN sent to the EP", None,
                          [(UP, 0, 0, 48, 0, b"\0" * 48), (DOWN, 0, 0, 0, 0, b"")],
                          None),
}


def served(peer, tag):
    """The EP still serves requests: a CFG_RD gets its completion."""
    peer.send(CFG_RD, tag, 4, 0)
    for _ in range(500):
        if any(t == tag for t, _, _ in peer.cpls):
            return True
        time.sleep(0.01)
    return False


def bad_message_case(name):
    doc, hello_bytes, msgs, down = BAD_MESSAGES[name]

    def case(c):
        for typ, flags, tag, length, addr, payload, *fds in msgs:
            c.peer.send(typ, tag, length, addr, payload,
                        fds=fds[0] if fds else None, flags=flags)
        if down:
            assert c.peer.closed.wait(5), "the EP closed the link"
            assert down in c.stderr(), f"EP says '{down}'"
        else:
            assert served(c.peer, 0x77), "the link still serves requests"
            assert not c.peer.closed.is_set(), "the link is up"
        assert c.ep.alive(), "EP alive"
    case.hello = hello_bytes
    case.__name__ = "case_bad_" + name
    case.__doc__ = (f"{doc}: " + ("link down, saying why" if down else
                                  "ignored, the link stays up"))
    return case


def case_map_rd_round_trip(c):
    """An empty MAP_RD is a round trip: an empty successful answer."""
    c.peer.send(MAP_RD, 9, 8, 0, struct.pack("<Q", 0))
    for _ in range(500):
        if (9, 0, 0) in c.peer.cpls:
            break
        time.sleep(0.01)
    assert (9, 0, 0) in c.peer.cpls, f"completions {c.peer.cpls}"
    # It asked for no translation: an inbound iATU write owes no REVOKE
    # (a sized MAP_RD makes it owe one: case_revoke_once)
    assert link_up(c.ep, c.peer), "link up"
    c.ep.writel(ATU + 0x100 + 0x14, RAM)
    c.ep.readl(DBI)
    time.sleep(0.3)
    assert c.peer.count(REVOKE) == 0, f"{c.peer.count(REVOKE)} REVOKEs"
    assert c.ep.alive(), "EP alive"


# ---------------------------------------------------------------------------
# More rows of docs/bad-input.md: requests the EP serves in a defined way,
# answers that are wrong in size or status, fds out of place, a peer that
# takes no writes, and the guest's values behind the host's requests.


def cpl_for(c, tag, secs=5):
    """The (status, payload) of the completion for @tag, or None."""
    for _ in range(int(secs * 100)):
        if tag in c.peer.cpl_data:
            return c.peer.cpl_data[tag]
        time.sleep(0.01)
    return None


def cfg_read(c, tag, length, offset):
    c.peer.send(CFG_RD, tag, length, offset)
    return cpl_for(c, tag)


def ep_program_bar(c, bar, mask, flags=0, target=RAM + 0x100000, region=0):
    """The EP's driver: BAR @bar of mask @mask (DBI2) and type @flags, and
    inbound region @region matching it onto @target."""
    c.ep.writel(DBI + 0x8bc, 1)                 # DBI_RO_WR_EN
    c.ep.writel(DBI + 0x1000 + 0x10 + 4 * bar, mask)
    c.ep.writel(DBI + 0x10 + 4 * bar, flags)
    c.ep.writel(DBI + 0x8bc, 0)
    base = ATU + 0x100 + 0x200 * region
    for off, val in ((0x14, target & 0xffffffff), (0x18, target >> 32),
                     (0x00, 0), (0x04, 0xc0080000 | bar << 8)):
        c.ep.writel(base + off, val)


def bar0_ready(c, target=RAM + 0x100000):
    """BAR0, 4 KiB at PCI 0x10000000, onto @target, Memory Space on (as
    the host's enumeration leaves it; set from the EP's side, so that
    this works before L0 too)."""
    ep_program_bar(c, 0, 0xfff, target=target)
    c.ep.writel(DBI + 0x10, 0x10000000)
    c.ep.writel(DBI + 0x04, 0x6)


def find_cap(ep, cap_id):
    pos = ep.readl(DBI + 0x34) & 0xff
    for _ in range(48):
        if not pos:
            break
        val = ep.readl(DBI + pos)
        if val & 0xff == cap_id:
            return pos
        pos = (val >> 8) & 0xfc
    return None


def case_cfg_outside_function(c):
    """CFG_RD / CFG_WR not aligned to their size, or into port logic
    (0x700 on): the read gives 0 with a successful completion, the write
    is dropped; the aligned control below 0x700 is served."""
    assert link_up(c.ep, c.peer), "link up"
    assert cfg_read(c, 1, 2, 0x1) == (0, b"\0\0"), "unaligned CFG_RD"
    assert cfg_read(c, 2, 4, 0x700) == (0, bytes(4)), "port-logic CFG_RD"
    want = struct.pack("<I", c.ep.readl(DBI))
    assert cfg_read(c, 3, 4, 0) == (0, want), "aligned CFG_RD"
    c.peer.send(CFG_WR, 0, 2, 0x3b, struct.pack("<I", 0x5a00))
    c.peer.send(CFG_WR, 0, 4, 0x8bc, struct.pack("<I", 1))   # DBI_RO_WR_EN
    cfg_read(c, 4, 4, 0)                    # served after the writes
    assert c.ep.readl(DBI + 0x3c) & 0xff == 0, "unaligned CFG_WR dropped"
    assert c.ep.readl(DBI + 0x8bc) & 1 == 0, "port-logic CFG_WR dropped"
    c.peer.send(CFG_WR, 0, 1, 0x3c, struct.pack("<I", 0x5a))
    cfg_read(c, 5, 4, 0)
    assert c.ep.readl(DBI + 0x3c) & 0xff == 0x5a, "aligned CFG_WR served"


def case_second_hello(c):
    """A second HELLO on a connection that is up is taken as a new
    start: "link partner connected" again, and requests still served."""
    assert link_up(c.ep, c.peer), "link up"
    assert served(c.peer, 0x70), "served before"
    c.peer.send(HELLO, 0, 12, 0, struct.pack("<IHHI", 0x4c455044, VERSION, 2, 1))
    assert served(c.peer, 0x71), "served after the second HELLO"
    assert not c.peer.closed.is_set(), "the link is up"
    said = c.stderr().count("link partner connected")
    assert said == 2, f"'link partner connected' {said} times"
    assert c.ep.alive(), "EP alive"


def case_mem_needs_l0(c):
    """MEM_RD / MEM_WR while the EP's LTSSM is disabled: the read is an
    Unsupported Request with all ones, the write is dropped; in L0 (the
    control) both reach the BAR's RAM."""
    bar0_ready(c)
    c.ep.writel(RAM + 0x100000, 0x11111111)
    c.peer.send(MEM_WR, 0, 4, 0x10000000, struct.pack("<I", 0x22222222))
    c.peer.send(MEM_RD, 1, 4, 0x10000000)
    assert cpl_for(c, 1) == (1, b"\xff" * 4), f"MEM_RD before L0: {cpl_for(c, 1)}"
    assert c.ep.readl(RAM + 0x100000) == 0x11111111, "MEM_WR before L0 dropped"
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(MEM_WR, 0, 4, 0x10000000, struct.pack("<I", 0x22222222))
    c.peer.send(MEM_RD, 2, 4, 0x10000000)
    assert cpl_for(c, 2) == (0, struct.pack("<I", 0x22222222)), "served in L0"


def case_mem_past_region(c):
    """A MEM_RD / MEM_WR that runs past the end of its BAR and inbound
    region is an Unsupported Request, and says so; the same length inside
    (the control) is served."""
    bar0_ready(c)
    assert link_up(c.ep, c.peer), "link up"
    c.ep.writel(RAM + 0x100ffc, 0x33333333)
    c.peer.send(MEM_WR, 0, 8, 0x10000ffc, bytes(8))
    c.peer.send(MEM_RD, 1, 8, 0x10000ffc)
    assert cpl_for(c, 1) == (1, b"\xff" * 8), f"MEM_RD across: {cpl_for(c, 1)}"
    assert c.ep.readl(RAM + 0x100ffc) == 0x33333333, "MEM_WR across dropped"
    c.peer.send(MEM_RD, 2, 8, 0x10000ff8)
    assert cpl_for(c, 2)[0] == 0, "MEM_RD inside served"
    assert c.stderr().count("crosses the end of inbound region 0") == 2, \
        "EP says why, for both"


def case_cpl_wrong_length(c):
    """A completion shorter than its MEM_RD gives the window's read all
    ones; the link stays up and a right one (the control) reads data."""
    c.peer.on[MEM_RD] = lambda peer, tag, length, addr, payload: \
        peer.send(CPL, tag, 2, 0, b"\x5a\x5a")
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    assert c.ep.readl(WINDOW) == 0xffffffff, "short completion: all ones"
    c.peer.on[MEM_RD] = answer_mem_rd
    assert c.ep.readl(WINDOW) == 0x5a5a5a5a, "right completion: data"
    assert not c.peer.closed.is_set(), "the link is up"


def case_revoke_cpl_with_data(c):
    """A completion with data for a REVOKE the EP waits on does not
    confirm it: the link goes down, saying why."""
    c.peer.on[REVOKE] = lambda peer, tag, *a: peer.send(CPL, tag, 4, 0, bytes(4))
    c.peer.on[MAP_RD] = answer_map_rd([])
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(MAP_RD, 1, 8, 0x10000000, struct.pack("<Q", 0x1000))
    cpl_for(c, 1)
    c.ep.writel(ATU + 0x100 + 0x14, RAM)        # an inbound iATU write
    assert c.peer.closed.wait(5), "the EP closed the link"
    assert "did not confirm" in c.stderr(), "EP says why"
    assert c.ep.alive(), "EP alive"


def sealed_block(c, word=0x600dcafe):
    """A sealed 1 MiB memfd shared with the EP as block 0, @word at 0."""
    fd = memfd(1 << 20, seal=True)
    mm = mmap.mmap(fd, 1 << 20)
    mm[0:4] = struct.pack("<I", word)
    c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20), fds=[fd])
    return mm


def window_after_map_rd(c):
    """Map the window and read by message until the EP has asked its
    MAP_RD: then the MEM_RD count and the window's first word."""
    c.ep.map_window()
    for _ in range(200):
        c.ep.readl(WINDOW + 0x100)
        if c.peer.count(MAP_RD):
            break
        time.sleep(0.01)
    time.sleep(0.05)
    reads = c.peer.count(MEM_RD)
    return reads, c.ep.readl(WINDOW)


def case_map_rd_odd_length(c):
    """A MAP_RD answer of one extent and 8 more bytes: the extent is
    used, the rest ignored (the window reads the shared RAM, no message)."""
    sealed_block(c)
    ext = struct.pack("<QQQII", 0, 0x10000, 0, 0, 1) + bytes(8)
    c.peer.on[MAP_RD] = lambda peer, tag, *a: peer.send(CPL, tag, len(ext), 0, ext)
    assert link_up(c.ep, c.peer), "link up"
    reads, word = window_after_map_rd(c)
    assert word == 0x600dcafe, f"window reads {word:#x}, not the shared RAM"
    assert c.peer.count(MEM_RD) == reads, "no message for a mapped page"


case_map_rd_odd_length.timeout_ms = 10000


def case_map_rd_read_only(c):
    """An extent without the writable flag is not mapped: the window
    stays on the message path and reads what the MEM_RDs answer."""
    sealed_block(c)
    c.peer.on[MAP_RD] = answer_map_rd([(0, 0x10000, 0, 0, 0)])
    assert link_up(c.ep, c.peer), "link up"
    reads, word = window_after_map_rd(c)
    assert c.peer.count(MAP_RD) >= 1, "the EP asked"
    assert word == 0x5a5a5a5a, f"window reads {word:#x}, not by message"
    assert c.peer.count(MEM_RD) == reads + 1, "one message for the read"


case_map_rd_read_only.timeout_ms = 10000


def case_map_rd_failed(c):
    """A MAP_RD answered with an error status counts as no answer: one
    warning, no MAP_RD again on that connection, reads by message."""
    sealed_block(c)
    c.peer.on[MAP_RD] = lambda peer, tag, *a: peer.send(CPL, tag, 0, 0, flags=1)
    assert link_up(c.ep, c.peer), "link up"
    reads, word = window_after_map_rd(c)
    assert word == 0x5a5a5a5a, f"window reads {word:#x}, not by message"
    c.ep.writel(ATU + 0x14, HOST_TARGET + 0x10000)   # a new translation
    c.ep.readl(WINDOW)
    assert c.peer.count(MAP_RD) == 1, f"{c.peer.count(MAP_RD)} MAP_RDs"
    assert c.stderr().count("did not answer a MAP_RD") == 1, "one warning"
    assert not c.peer.closed.is_set(), "the link is up"


case_map_rd_failed.timeout_ms = 10000


def case_unanswered_read(c):
    """A MEM_RD the peer never answers: the window reads all ones after
    link-timeout-ms; the first warns, the next only traces; the link
    stays up."""
    c.peer.on[MEM_RD] = lambda *a: None
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    assert c.ep.readl(WINDOW) == 0xffffffff, "first read: all ones"
    assert c.ep.readl(WINDOW + 4) == 0xffffffff, "second read: all ones"
    said = c.stderr().count("no completion for")
    assert said == 1, f"warned {said} times"
    assert c.ep.readl(ELBI + 4) == 1 and served(c.peer, 0x72), "link up"


def memfds_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += "memfd:hostile-peer" in os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return n


def case_stray_fds(c):
    """20 fds with a CFG_RD: the EP keeps 16 and closes the rest, then
    all of them at the next connection; an fd that came with another
    message is what the next SHM takes."""
    assert link_up(c.ep, c.peer), "link up"
    fds = [memfd(4096, seal=True) for _ in range(20)]
    c.peer.send(CFG_RD, 1, 4, 0, fds=fds)
    for fd in fds:
        os.close(fd)
    assert cpl_for(c, 1), "the CFG_RD is served"
    held = memfds_of(c.ep.p.pid)
    assert held == 16, f"the EP holds {held} of them"
    c.peer.s.shutdown(socket.SHUT_RDWR)         # wakes its reader too
    c.peer.s.close()
    c.peer = Peer(c.sock)
    c.peer.on[MEM_RD] = answer_mem_rd
    c.peer.on[REVOKE] = answer_revoke
    assert served(c.peer, 0x73), "the new connection is served"
    held = memfds_of(c.ep.p.pid)
    assert held == 0, f"the EP still holds {held} after the new connection"
    # The fd before its SHM: the SHM takes it, and the window maps it
    fd = memfd(1 << 20, seal=True)
    mm = mmap.mmap(fd, 1 << 20)
    mm[0:4] = struct.pack("<I", 0x600dcafe)
    c.peer.send(CFG_RD, 2, 4, 0, fds=[fd])
    c.peer.send(SHM, 0, 16, 0, struct.pack("<IIQ", 0, 0, 1 << 20))
    c.peer.on[MAP_RD] = answer_map_rd([(0, 0x10000, 0, 0, 1)])
    reads, word = window_after_map_rd(c)
    assert word == 0x600dcafe, f"window reads {word:#x}, not the fd's RAM"
    assert not c.peer.closed.is_set(), "the link is up"


case_stray_fds.timeout_ms = 10000


def case_peer_takes_no_writes(c):
    """A peer that shuts its read side but keeps the socket: what it
    sends is still handled; after link-timeout-ms the link goes down,
    saying why, and the EP goes on."""
    assert link_up(c.ep, c.peer), "link up"
    c.ep.map_window()
    c.peer.s.shutdown(socket.SHUT_RD)
    c.ep.writel(WINDOW, 1)                      # a MEM_WR that fails
    c.peer.send(CFG_WR, 0, 1, 0x3c, struct.pack("<I", 0x5a))
    for _ in range(300):
        if c.ep.readl(DBI + 0x3c) & 0xff == 0x5a:
            break
        time.sleep(0.01)
    assert c.ep.readl(DBI + 0x3c) & 0xff == 0x5a, "its CFG_WR was handled"
    for _ in range(300):
        if "the socket takes no writes" in c.stderr():
            break
        time.sleep(0.01)
    assert "the socket takes no writes" in c.stderr(), "EP says why"
    assert c.ep.alive(), "EP alive"


def case_unaligned_inbound_target(c):
    """An inbound region whose target is not page-aligned stays on the
    message path: the EP's answer to a MAP_RD of its BAR has no extent;
    with an aligned target (the control) it has one."""
    bar0_ready(c, target=RAM + 0x100100)
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(MAP_RD, 1, 8, 0x10000000, struct.pack("<Q", 0x1000))
    got = cpl_for(c, 1)
    assert got == (0, b""), f"unaligned target: answer {got}"
    c.ep.writel(ATU + 0x100 + 0x14, RAM + 0x100000)
    c.peer.send(MAP_RD, 2, 8, 0x10000000, struct.pack("<Q", 0x1000))
    got = cpl_for(c, 2)
    assert got and got[0] == 0 and len(got[1]) == 32, f"aligned: answer {got}"


def case_bar_mask_holes(c):
    """A DBI2 BAR mask with holes is kept as written: the host's
    writable bits are ~(mask | type bits), and decode takes base + mask
    as the last byte."""
    ep_program_bar(c, 0, 0xf0ff)
    assert c.ep.readl(DBI + 0x1000 + 0x10) == 0xf0ff, "mask kept"
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(CFG_WR, 0, 4, 0x10, struct.pack("<I", 0xffffffff))
    assert cfg_read(c, 1, 4, 0x10) == (0, struct.pack("<I", 0xffff0f00)), \
        f"BAR0 sizing reads {cfg_read(c, 1, 4, 0x10)}"
    c.peer.send(CFG_WR, 0, 4, 0x10, struct.pack("<I", 0x10000000))
    c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
    c.peer.send(MEM_WR, 0, 4, 0x1000f0fc, struct.pack("<I", 0x44444444))
    cfg_read(c, 2, 4, 0)
    assert c.ep.readl(RAM + 0x100000 + 0xf0fc) == 0x44444444, "decoded"


def case_bar5_64bit(c):
    """BAR5 typed 64-bit has no upper half: it decodes as a 32-bit BAR."""
    ep_program_bar(c, 5, 0xfff, flags=0x4)
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(CFG_WR, 0, 4, 0x24, struct.pack("<I", 0xffffffff))
    assert cfg_read(c, 1, 4, 0x24) == (0, struct.pack("<I", 0xfffff004)), \
        "BAR5 sizing"
    c.peer.send(CFG_WR, 0, 4, 0x24, struct.pack("<I", 0x20000000))
    c.peer.send(CFG_WR, 0, 2, 0x04, struct.pack("<I", 0x6))
    c.peer.send(MEM_WR, 0, 4, 0x20000010, struct.pack("<I", 0x55555555))
    cfg_read(c, 2, 4, 0)
    assert c.ep.readl(RAM + 0x100010) == 0x55555555, "BAR5 decoded"


def case_msi_mme_above_mmc(c):
    """The host enables more MSI vectors than Multiple Message Capable
    offers: the field is kept as written."""
    msi = find_cap(c.ep, 0x05)
    assert msi, "an MSI capability"
    c.ep.writel(DBI + 0x8bc, 1)
    c.ep.cmd(f"writew 0x{DBI + msi + 2:x} 0x0")         # MMC 0: 1 vector
    c.ep.writel(DBI + 0x8bc, 0)
    assert link_up(c.ep, c.peer), "link up"
    c.peer.send(CFG_WR, 0, 2, msi + 2, struct.pack("<I", 0x51))   # MME 5
    flags, data = cfg_read(c, 1, 2, msi + 2)
    assert (struct.unpack("<H", data)[0] >> 4) & 7 == 5, f"MSI control {data}"


def rcar_link_up(ep):
    ep.writel(ELBI + 0x14, 1)                   # PCIERSTCTRL1.APP_LTSSM_ENABLE
    for _ in range(200):
        if ep.readl(ELBI + 0x84) & 0xc0 == 0xc0:
            return True
        time.sleep(0.01)
    return False


def case_rebar_unsupported_size(c):
    """R-Car: the host selects a Resizable BAR size the capability does
    not list: taken (LOG_UNIMP says a resize replugs), and the BAR's
    mask follows it."""
    rebar = 0x100
    for _ in range(32):
        hdr = c.ep.readl(DBI + rebar)
        if hdr & 0xffff == 0x15:
            break
        rebar = hdr >> 20
    assert c.ep.readl(DBI + rebar) & 0xffff == 0x15, "a ReBAR capability"
    c.ep.writel(DBI + 0x8bc, 1)
    c.ep.writel(DBI + 0x1000 + 0x10, 1)         # BAR0 on, 64-bit
    c.ep.writel(DBI + 0x10, 0x4)
    c.ep.writel(DBI + 0x8bc, 0)
    assert rcar_link_up(c.ep), "link up"
    ctrl = struct.unpack("<I", cfg_read(c, 1, 4, rebar + 8)[1])[0]
    c.peer.send(CFG_WR, 0, 4, rebar + 8, struct.pack("<I", (ctrl & ~0x3f00) | 20 << 8))
    got = struct.unpack("<I", cfg_read(c, 2, 4, rebar + 8)[1])[0]
    assert (got >> 8) & 0x3f == 20, f"ReBAR control {got:#x}"
    c.peer.send(CFG_WR, 0, 4, 0x14, struct.pack("<I", 0xffffffff))
    upper = cfg_read(c, 3, 4, 0x14)
    assert upper == (0, struct.pack("<I", 0xffffff00)), f"1 TiB BAR0: {upper}"
    assert "the host resized a BAR" in c.stderr(), "LOG_UNIMP says so"


case_rebar_unsupported_size.device = "rcar-gen4-pcie-ep"


CASES = [case_requests_need_l0, case_hot_reset_needs_l0, case_hot_reset_addr,
         case_peer_stops_reading,
         case_slow_reader_loses_nothing, case_steady_slow_reader,
         case_last_words, case_quick_reconnect, case_sealed_fd_mapped, case_revoke_once, case_cfg_address_alias, case_unsealed_fd, case_huge_declared_size,
         case_bad_extents, case_map_rd_ignored, case_revoke_ignored,
         case_unanswered_posted_revokes, case_window_round_trip_lost,
         case_map_rd_round_trip,
         case_cfg_outside_function, case_second_hello, case_mem_needs_l0,
         case_mem_past_region, case_cpl_wrong_length,
         case_revoke_cpl_with_data, case_map_rd_odd_length,
         case_map_rd_read_only, case_map_rd_failed, case_unanswered_read,
         case_stray_fds, case_peer_takes_no_writes,
         case_unaligned_inbound_target, case_bar_mask_holes, case_bar5_64bit,
         case_msi_mme_above_mmc, case_rebar_unsupported_size] + \
    [bad_message_case(name) for name in BAD_MESSAGES]


class FakeEP:
    """A fake endpoint: the host QEMU connects to it and plugs its
    function; it then sends the host whatever memory requests it likes."""

    def __init__(self, path):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.cpls = {}

    def accept(self, image=None, masks=None, up=True):
        self.srv.settimeout(10)
        self.s, _ = self.srv.accept()
        self.s.settimeout(5)
        self.seen = []
        self.eof = False
        self.send(HELLO, 0, 12, 0, struct.pack("<IHHI", 0x4c455044, VERSION, 1, 0))
        # CFG_IMAGE: the IDs (the rest zero, nothing writable), then UP
        if image is None:
            image = struct.pack("<I", 0xb500104c) + bytes(1020) + bytes(2048)
        self.send(CFG_IMAGE, 0, len(image), 0, image)
        # UP: BAR0 of 4 KiB (DBI2 mask, enable bit), nothing else
        self.masks = masks or [0xfff] + [0] * 5
        if up:
            self.send_up()

    def send_up(self):
        self.send(UP, 0, 48, 0, struct.pack("<6I6I", *self.masks, *([0] * 6)))

    def count(self, typ, secs=0.3):
        """Read for @secs: how many @typ messages the host has sent."""
        self.read_cpl(None, secs)
        return self.seen.count(typ)

    def closed(self):
        self.read_cpl(None, 0.5)
        return self.eof

    def send(self, typ, tag, length, addr, payload=b""):
        self.s.sendall(HDR.pack(typ, 0, tag, length, addr) + payload)

    def read_cpl(self, tag, secs=5):
        """The completion for @tag: (status, data); requests are counted
        in seen, and ignored."""
        buf = b""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            msgs, buf = split_messages(buf)
            for typ, flags, t, _, _, data in msgs:
                self.seen.append(typ)
                if typ == CPL and t == tag:
                    return flags, data
            try:
                self.s.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            buf += chunk
        return None


def ecam(bus, dev, off):
    return 0x4010000000 + (bus << 20) + (dev << 15) + off


def host_qemu(qemu, sock, log, gic=3):
    """A host QEMU under qtest whose dw-pcie-ep-link connects to @sock;
    driven with the EP class's qtest helpers."""
    q = EP.__new__(EP)
    q.p = subprocess.Popen(
        [qemu, "-display", "none", "-nic", "none", "-monitor", "none",
         "-serial", "none", "-accel", "qtest", "-qtest", "stdio",
         "-M", f"virt,gic-version={gic}",
         "-device", "pcie-root-port,id=rp0,chassis=1,slot=1",
         "-chardev", f"socket,id=link,path={sock},reconnect-ms=100",
         "-device", "dw-pcie-ep-link,chardev=link,port=rp0",
         "-d", "guest_errors"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
    return q


def host_reach_limited(qemu, tmp):
    """A fake EP's requests reach the host's RAM, and not the GICv2 CPU
    interface (which used to crash the host: no current CPU there)."""
    sock = os.path.join(tmp, "fake-ep.sock")
    ep = FakeEP(sock)
    log = open(os.path.join(tmp, "host.log"), "w+")
    q = host_qemu(qemu, sock, log, gic=2)
    host = q.p
    try:
        ep.accept()
        # The host's firmware: bus 1 behind the port, then bus mastering
        # on the function once it is plugged (its config reads would come
        # to us, so the RAM write's completion tells).
        q.writel(ecam(0, 1, 0x18), 0x00010100)
        # Power the slot on, as pciehp does on Presence Detect
        pos = q.readl(ecam(0, 1, 0x34)) & 0xff
        while q.readl(ecam(0, 1, pos)) & 0xff != 0x10:
            pos = (q.readl(ecam(0, 1, pos)) >> 8) & 0xff
        for _ in range(200):
            if q.readl(ecam(0, 1, pos + 0x18)) >> 16 & 0x40:
                break
            time.sleep(0.01)
        sltctl = q.readl(ecam(0, 1, pos + 0x18)) & 0xffff
        q.cmd(f"writew 0x{ecam(0, 1, pos + 0x18):x} 0x{(sltctl & ~0x7c0) | 0x100:x}")
        for tag in range(1, 100):
            q.writel(ecam(1, 0, 0x04), 0x6)
            ep.send(MEM_WR, 0, 4, 0x40000100, struct.pack("<I", 0x600dcafe))
            ep.send(MEM_RD, tag, 4, 0x40000100)
            ram = ep.read_cpl(tag)
            if ram and ram[0] == 0:
                break
            time.sleep(0.05)
        ep.send(MEM_RD, 200, 4, 0x0801000c)     # GICC_IAR
        gicc = ep.read_cpl(200)
        alive = host.poll() is None and q.readl(0x40000100) == 0x600dcafe
    except (OSError, EOFError, socket.timeout):
        return False
    finally:
        if host.poll() is None:
            host.terminate()
            host.wait(10)
        ep.srv.close()
    return (ram == (0, struct.pack("<I", 0x600dcafe)) and gicc is not None and
            gicc[0] == 1 and alive)


SMP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smp")
SLOW = 0.15     # seconds the fake partner takes to answer a read


def build_smp_guest(tmp, ep, poweroff=False, flood=False):
    """tests/peer/smp/ built for the EP (dw-pcie-ep) or the host side."""
    out = os.path.join(tmp, f"smp-{'ep' if ep else 'host'}{'-off' if poweroff else ''}"
                       f"{'-flood' if flood else ''}.elf")
    subprocess.run(["aarch64-linux-gnu-gcc", "-nostdlib", "-ffreestanding",
                    "-mgeneral-regs-only", "-mstrict-align", "-O2", "-static",
                    "-Wl,-Ttext=0x40200000", "-Wl,--build-id=none", "-o", out]
                   + (["-DEP_GUEST"] if ep else [])
                   + (["-DPOWEROFF_GUEST"] if poweroff else [])
                   + (["-DFLOOD_GUEST"] if flood else [])
                   + [os.path.join(SMP_DIR, "start.S"),
                      os.path.join(SMP_DIR, "smp-guest.c")], check=True)
    return out


def slowly(handler):
    """Answer each request SLOW seconds late, several at once."""
    def later(peer, *args):
        threading.Timer(SLOW, handler, (peer,) + args).start()
    return later


def smp_vm(qemu, elf, serial, log, extra):
    return subprocess.Popen(
        [qemu, "-display", "none", "-nic", "none", "-monitor", "none",
         "-M", "virt,gic-version=3", "-accel", "tcg", "-cpu", "cortex-a57",
         "-smp", "2", "-object", "memory-backend-memfd,id=ram,size=128M",
         "-machine", "memory-backend=ram", "-kernel", elf,
         "-serial", f"file:{serial}", "-d", "guest_errors"] + extra,
        stdout=log, stderr=log)


def smp_results(serial, name, p):
    """The guest's phase lines, once it says done (or dies, or 60 s)."""
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline and p.poll() is None:
        with open(serial) as f:
            text = f.read()
        if f"{name}: done" in text or "failed" in text:
            break
        time.sleep(0.1)
    phases = {}
    for m in re.finditer(rf"^{name}: (\S+) (.*)$", text, re.M):
        phases[m.group(1)] = {k: int(v) for k, v in
                              re.findall(r"(\w+)=(\d+)", m.group(2))}
    return text, phases


def smp_phases_ok(phases, names):
    """Every access of both CPUs completed, with the right data."""
    for n in names:
        r = phases.get(n)
        if not r or r["cpu0_good"] != r["cpu0_reads"] or r["cpu0_aborts"] \
                or r["cpu1_aborts"] or r["cpu1_bad"] or not r["cpu1_reads"]:
            return False
    return True


def smp_ep(qemu, tmp):
    """-smp 2 EP: while CPU 0 waits on the host through the window, CPU 1's
    DBI reads and its own window reads complete (they used to abort)."""
    elf = build_smp_guest(tmp, ep=True)
    sock, serial = os.path.join(tmp, "smp-ep.sock"), os.path.join(tmp, "smp-ep.out")
    log = open(os.path.join(tmp, "smp-ep.log"), "w+")
    open(serial, "w").close()
    vm = smp_vm(qemu, elf, serial, log, [
        "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
        "-device", "dw-pcie-ep,id=ep,chardev=link,link-timeout-ms=2000"])
    peer = Peer(sock, features=0)
    peer.on[MEM_RD] = slowly(answer_mem_rd)
    try:
        text, phases = smp_results(serial, "smp-ep", vm)
    finally:
        vm.terminate()
        vm.wait(10)
        peer.s.close()
    print("# " + text.strip().replace("\n", "\n# "))
    return smp_phases_ok(phases, ("window+dbi", "window+window"))


class QMP:
    """Just enough of a QMP client."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(200):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.02)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        import json
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            reply = json.loads(self.f.readline())
            if "return" in reply or "error" in reply:
                return reply


def poweroff_reset(qemu, tmp):
    """With -action shutdown=pause, the link comes back after a guest
    poweroff, system_reset and cont (the IOThread used to stop for good)."""
    elf = build_smp_guest(tmp, ep=True, poweroff=True)
    sock, serial = os.path.join(tmp, "off.sock"), os.path.join(tmp, "off.out")
    qmp_path = os.path.join(tmp, "off.qmp")
    log = open(os.path.join(tmp, "off.log"), "w+")
    open(serial, "w").close()
    vm = smp_vm(qemu, elf, serial, log, [
        "-action", "shutdown=pause",
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
        "-device", "dw-pcie-ep,id=ep,chardev=link"])
    peer = Peer(sock, features=0)

    def wait(pred, secs=20):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline and not pred():
            time.sleep(0.05)
        return pred()

    def readies():
        with open(serial) as f:
            return f.read().count("smp-ep: ready")
    try:
        qmp = QMP(qmp_path)
        ok = wait(lambda: readies() == 1) and wait(
            lambda: qmp.cmd("query-status")["return"]["status"] == "shutdown")
        ok = ok and peer.count(UP) == 1
        if ok:
            qmp.cmd("system_reset")
            qmp.cmd("cont")
            ok = wait(lambda: readies() == 2) and wait(lambda: peer.count(UP) == 2, 5)
    finally:
        vm.terminate()
        vm.wait(10)
        peer.s.close()
    with open(serial) as f:
        print("# " + f.read().strip().replace("\n", "\n# "))
    return ok


def vcpu_flood_stalled_peer(qemu, tmp):
    """A vCPU streaming writes to a host that reads nothing waits for room
    (up to the link timeout), then the link goes down: the guest goes on,
    and stop answers."""
    elf = build_smp_guest(tmp, ep=True, flood=True)
    sock, serial = os.path.join(tmp, "flood.sock"), os.path.join(tmp, "flood.out")
    qmp_path = os.path.join(tmp, "flood.qmp")
    log = open(os.path.join(tmp, "flood.log"), "w+")
    open(serial, "w").close()
    vm = smp_vm(qemu, elf, serial, log, [
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
        "-device", "dw-pcie-ep,id=ep,chardev=link,link-timeout-ms=1000"])
    peer = Peer(sock, features=0, read=False)
    try:
        qmp = QMP(qmp_path)
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and "flood done" not in text:
            time.sleep(0.1)
            with open(serial) as f:
                text = f.read()
        dropped = qmp.cmd("qom-get", path="/machine/peripheral/ep",
                          property="link-tx-dropped")["return"]
        stopped = "return" in qmp.cmd("stop")
        status = qmp.cmd("query-status")["return"]["status"]
        log.flush()
        log.seek(0)
        said = "has read nothing for 1000 ms" in log.read()
    finally:
        vm.terminate()
        vm.wait(10)
        peer.s.close()
    print(f"# flood done: {'flood done' in text}, dropped {dropped}, "
          f"stop: {stopped} ({status}), link down said: {said}")
    # Writes past the link's going down are lost with it, not "dropped"
    # from the queue: the counter need not move, but it must be there.
    return "flood done" in text and dropped >= 0 and stopped and \
        status == "paused" and said



def flood_vm(qemu, tmp, name, timeout_ms):
    """The flood guest's VM, with QMP; its link partner is up to the caller."""
    elf = build_smp_guest(tmp, ep=True, flood=True)
    sock, serial = os.path.join(tmp, f"{name}.sock"), os.path.join(tmp, f"{name}.out")
    qmp_path = os.path.join(tmp, f"{name}.qmp")
    log = open(os.path.join(tmp, f"{name}.log"), "w+")
    open(serial, "w").close()
    vm = smp_vm(qemu, elf, serial, log, [
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
        "-device", f"dw-pcie-ep,id=ep,chardev=link,link-timeout-ms={timeout_ms}"])
    return vm, sock, serial, qmp_path, log


def serial_says(serial, what, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        with open(serial) as f:
            if what in f.read():
                return True
        time.sleep(0.1)
    return False


def vcpu_stop_while_waiting(qemu, tmp):
    """A vCPU waiting for room (link timeout 60 s, a host that reads
    nothing) stops at once when asked: QMP stop answers in seconds."""
    vm, sock, serial, qmp_path, log = flood_vm(qemu, tmp, "waitstop", 60000)
    peer = Peer(sock, features=0, read=False)
    try:
        qmp = QMP(qmp_path)
        started = serial_says(serial, ": ready", 30)
        time.sleep(1)               # the queue is full by now: it waits
        t0 = time.monotonic()
        stopped = "return" in qmp.cmd("stop")
        took = time.monotonic() - t0
        status = qmp.cmd("query-status")["return"]["status"]
    finally:
        vm.terminate()
        vm.wait(10)
        peer.s.close()
    print(f"# flood started: {started}, stop took {took:.2f} s ({status})")
    return started and stopped and status == "paused" and took < 20

def bad_chardev_refused(qemu, tmp):
    """Both ends refuse a chardev that is not a socket (a file or a pipe
    cannot be closed on malformed input)."""
    for dev in ("dw-pcie-ep,chardev=link", "dw-pcie-ep-link,chardev=link,port=rp0"):
        p = subprocess.run([qemu, "-M", "virt", "-display", "none", "-nic", "none",
                            "-monitor", "none", "-serial", "none", "-S",
                            "-device", "pcie-root-port,id=rp0",
                            "-chardev", "file,id=link,path=/dev/null",
                            "-device", dev], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if p.returncode != 1 or "is not a socket" not in p.stdout:
            return False
    return True


class ServingFakeEP(FakeEP):
    """A fake EP that answers BAR reads SLOW seconds late, and nothing
    else: the host's config reads must not need it (CFG_IMAGE)."""

    def serve(self):
        buf = b""
        lock = threading.Lock()

        def answer(tag, data):
            with lock:
                self.send(CPL, tag, len(data), 0, data)
        while True:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            msgs, buf = split_messages(buf + chunk)
            for typ, _, tag, length, addr, _ in msgs:
                if typ == MEM_RD:
                    threading.Timer(SLOW, answer, (tag, b"\x5a" * length)).start()


def smp_host(qemu, tmp):
    """-smp 2 host: while CPU 0 waits on a BAR read of the EP's function,
    CPU 1's reads of its config space, of the root port's and of the BAR
    complete (a config or BAR read used to make them abort)."""
    elf = build_smp_guest(tmp, ep=False)
    sock, serial = os.path.join(tmp, "smp-host.sock"), os.path.join(tmp, "smp-host.out")
    log = open(os.path.join(tmp, "smp-host.log"), "w+")
    open(serial, "w").close()
    ep = ServingFakeEP(sock)
    vm = smp_vm(qemu, elf, serial, log, [
        "-device", "pcie-root-port,id=rp0,chassis=1,slot=1",
        "-chardev", f"socket,id=link,path={sock},reconnect-ms=100",
        "-device", "dw-pcie-ep-link,chardev=link,port=rp0"])
    try:
        ep.accept()
        threading.Thread(target=ep.serve, daemon=True).start()
        text, phases = smp_results(serial, "smp-host", vm)
    finally:
        vm.terminate()
        vm.wait(10)
        ep.srv.close()
    print("# " + text.strip().replace("\n", "\n# "))
    return smp_phases_ok(phases, ("bar+ecam", "bar+port", "bar+bar"))


def host_power_slot(q, on):
    """The host's firmware: bus 1 behind the root port; slot power."""
    q.writel(ecam(0, 1, 0x18), 0x00010100)
    pos = q.readl(ecam(0, 1, 0x34)) & 0xff
    while q.readl(ecam(0, 1, pos)) & 0xff != 0x10:
        pos = (q.readl(ecam(0, 1, pos)) >> 8) & 0xff
    for _ in range(300):
        sta = q.readl(ecam(0, 1, pos + 0x18)) >> 16
        if (sta & 0x40) if on else (sta & 0x1):
            break
        time.sleep(0.01)
    sltctl = q.readl(ecam(0, 1, pos + 0x18)) & 0xffff
    q.cmd(f"writew 0x{ecam(0, 1, pos + 0x1a):x} 0x9")     # events seen
    new = (sltctl & ~0x7c0) | 0x100 if on else sltctl | 0x700
    q.cmd(f"writew 0x{ecam(0, 1, pos + 0x18):x} 0x{new:x}")


def host_lying_image(qemu, tmp):
    """A fake EP's config image with a bit both writable and W1C and
    capability lists that loop or go backwards: the host neither aborts
    at plug or on a config write nor hangs when the function goes."""
    sock = os.path.join(tmp, "lying-image.sock")
    ep = FakeEP(sock)
    log = open(os.path.join(tmp, "lying-image.log"), "w+")
    q = host_qemu(qemu, sock, log, gic=3)
    host = q.p
    cfg, wm, w1c = bytearray(1024), bytearray(1024), bytearray(1024)
    struct.pack_into("<I", cfg, 0, 0xb500104c)
    cfg[0x06] = 0x10                        # Status: a capability list
    cfg[0x34], cfg[0x40], cfg[0x41] = 0x40, 0x01, 0x40   # PM, next: itself
    struct.pack_into("<I", cfg, 0x100, 0x004 << 20 | 1 << 16 | 0x1f)  # PTM, next: 4
    wm[0x3c], w1c[0x3c] = 0xff, 0x01
    ok = False
    try:
        ep.accept(bytes(cfg + wm + w1c))
        host_power_slot(q, True)
        for _ in range(300):
            if q.readl(ecam(1, 0, 0)) == 0xb500104c:
                break
            time.sleep(0.01)
        q.cmd(f"writeb 0x{ecam(1, 0, 0x3c):x} 0x2a")
        ep.send(DOWN, 0, 0, 0)
        host_power_slot(q, False)           # the function goes
        done = threading.Event()
        threading.Thread(target=lambda: (q.readl(ecam(0, 1, 0)), done.set()),
                         daemon=True).start()
        ok = done.wait(10) and host.poll() is None
    except (OSError, EOFError, socket.timeout):
        ok = False
    finally:
        host.kill()
        host.wait(10)
        ep.srv.close()
    return ok


def host_fixture(qemu, tmp, name):
    """A FakeEP and the host QEMU it serves, with the host's log."""
    sock = os.path.join(tmp, f"{name}.sock")
    ep = FakeEP(sock)
    log = open(os.path.join(tmp, f"{name}.log"), "w+")
    return ep, host_qemu(qemu, sock, log, gic=3), log


def log_text(log):
    log.flush()
    log.seek(0)
    return log.read()


def host_stop(q, ep):
    if q.p.poll() is None:
        q.p.kill()
        q.p.wait(10)
    ep.srv.close()


def wait_function(q, want=0xb500104c):
    for _ in range(300):
        if q.readl(ecam(1, 0, 0)) == want:
            return True
        time.sleep(0.01)
    return False


def host_bad_requests(qemu, tmp):
    """A fake EP's requests that the host does not serve: memory requests
    with no function plugged (UR, a guest error), config requests (CA,
    nothing logged), a HOT_RESET (a guest error); an UP whose BAR masks
    the host cannot map (BAR left out, a guest error).  The link stays up
    and the function then plugs with the BAR that is good."""
    ep, q, log = host_fixture(qemu, tmp, "host-bad-requests")
    try:
        # UP: BAR0 good (4 KiB), BAR1 with holes, BAR2 all ones
        ep.accept(masks=[0xfff, 0x12345, 0xffffffff, 0, 0, 0], up=False)
        ep.send(MEM_RD, 1, 4, 0x40000100)
        assert ep.read_cpl(1)[0] == 1, "MEM_RD before UP: UR"
        ep.send(CFG_RD, 2, 4, 0)
        got = ep.read_cpl(2)
        assert got == (2, b"\xff" * 4), f"CFG_RD to the host: {got}"
        ep.send(CFG_WR, 0, 4, 0, struct.pack("<I", 0))
        ep.send(HOT_RESET, 0, 0, 0)
        ep.send_up()
        host_power_slot(q, True)
        assert wait_function(q), "the function plugs"
        for bar, want in ((0, 0xfffff000), (1, 0), (2, 0)):
            q.writel(ecam(1, 0, 0x10 + 4 * bar), 0xffffffff)
            got = q.readl(ecam(1, 0, 0x10 + 4 * bar))
            assert got == want, f"BAR{bar} sizes as {got:#x}"
        text = log_text(log)
        for line in ("endpoint request at 0x40000100 with no function plugged",
                     "unexpected link event 9",
                     "BAR1 mask 0x1234f is not a size the host can map; BAR1 left out",
                     "BAR2 mask 0xffffffff is not a size the host can map"):
            assert line in text, f"the host's log lacks '{line}'"
        assert q.p.poll() is None, "the host lives"
    finally:
        host_stop(q, ep)
    return True


def host_bad_image_bounds(qemu, tmp):
    """CFG_IMAGEs whose length or address is out of bounds take the link
    down, saying why; the host reconnects each time."""
    ep, q, log = host_fixture(qemu, tmp, "host-image-bounds")
    bad = [(0, 0), (13, 0), (3 * 1028, 0), (12, 2), (24, 0x6fc)]
    try:
        for length, addr in bad:
            ep.accept()
            ep.send(CFG_IMAGE, 0, length, addr, bytes(length))
            assert ep.read_cpl(0x7fff) is None and ep.closed(), \
                f"CFG_IMAGE of {length} at {addr:#x}: the link is still up"
        said = log_text(log).count("malformed message")
        assert said == len(bad), f"'malformed message' {said} times"
        ep.accept()
        host_power_slot(q, True)
        assert wait_function(q), "a good connection plugs the function"
    finally:
        host_stop(q, ep)
    return True


def host_image_tag(qemu, tmp):
    """A CFG_IMAGE's tag (how many of the host's CFG_WRs the EP had seen)
    that is behind keeps the host's own value of a dword it wrote; one
    that is ahead makes the host take the EP's value."""
    ep, q, log = host_fixture(qemu, tmp, "host-image-tag")
    cfg, wm = bytearray(1024), bytearray(1024)
    struct.pack_into("<I", cfg, 0, 0xb500104c)
    wm[0x3c] = 0xff
    try:
        ep.accept(bytes(cfg + wm + bytes(1024)))
        host_power_slot(q, True)
        assert wait_function(q), "the function plugs"
        q.cmd(f"writeb 0x{ecam(1, 0, 0x3c):x} 0x2a")
        writes = ep.count(CFG_WR)
        assert writes >= 1, "the host sent its CFG_WRs"
        dword = struct.pack("<I", 0x11) + struct.pack("<I", 0xff) + bytes(4)
        ep.send(CFG_IMAGE, writes - 1, 12, 0x3c, dword)         # behind
        time.sleep(0.2)
        got = q.readl(ecam(1, 0, 0x3c)) & 0xff
        assert got == 0x2a, f"behind: Interrupt Line {got:#x}"
        ep.send(CFG_IMAGE, writes + 3, 12, 0x3c, dword)         # ahead
        for _ in range(100):
            if q.readl(ecam(1, 0, 0x3c)) & 0xff == 0x11:
                break
            time.sleep(0.01)
        got = q.readl(ecam(1, 0, 0x3c)) & 0xff
        assert got == 0x11, f"ahead: Interrupt Line {got:#x}"
    finally:
        host_stop(q, ep)
    return True



def config_copy_converges(qemu, tmp):
    """The EP's driver and the host write the same config dword at once
    (Interrupt Pin, Interrupt Line): the host's copy ends as the EP's (it
    used to keep a stale dword when the host's write changed nothing)."""
    sock = os.path.join(tmp, "converge.sock")
    elog = open(os.path.join(tmp, "converge-ep.log"), "w+")
    hlog = open(os.path.join(tmp, "converge-host.log"), "w+")
    ep = EP(qemu, sock, elog, timeout_ms=2000)
    q = host_qemu(qemu, sock, hlog, gic=3)
    host = q.p
    try:
        for _ in range(300):
            if ep.readl(ELBI + 4) == 0:
                ep.writel(ELBI, 1)
            if q.readl(ecam(0, 1, 0)) and ep.readl(ELBI + 4) == 1:
                break
            time.sleep(0.01)
        host_power_slot(q, True)
        for _ in range(300):
            if q.readl(ecam(1, 0, 0)) & 0xffff == 0x16c3:
                break
            time.sleep(0.01)
        # The EP holds its BQL (a long memset), then sets Interrupt Pin;
        # meanwhile the host writes Interrupt Line, which changes nothing.
        ep.writel(DBI + 0x8bc, 1)
        batch = "".join(f"memset 0x40000000 0x8000000 0x{i:x}\n" for i in range(8))
        batch += f"writeb 0x{DBI + 0x3d:x} 0x1\n"
        ep.p.stdin.write(batch)
        ep.p.stdin.flush()
        time.sleep(0.15)
        q.cmd(f"writeb 0x{ecam(1, 0, 0x3c):x} 0x0")
        for _ in range(9):
            ep.p.stdout.readline()
        want = ep.readl(DBI + 0x3c)
        for _ in range(300):
            if q.readl(ecam(1, 0, 0x3c)) == want:
                break
            time.sleep(0.01)
        return want == 0x100 and q.readl(ecam(1, 0, 0x3c)) == want
    except (OSError, EOFError):
        return False
    finally:
        host.kill()
        host.wait(10)
        ep.stop()


def bad_timeouts_refused(qemu, tmp):
    """Both ends refuse a link-timeout-ms above INT_MAX ms at start-up
    (one used to abort QEMU at the first wait), under either name."""
    sock = os.path.join(tmp, "props.sock")
    for dev in (f"dw-pcie-ep,chardev=link,link-timeout-ms={1 << 31}",
                f"dw-pcie-ep-link,chardev=link,port=rp0,timeout-ms={1 << 31}"):
        p = subprocess.run([qemu, "-M", "virt", "-display", "none", "-nic", "none",
                            "-monitor", "none", "-serial", "none", "-S",
                            "-device", "pcie-root-port,id=rp0",
                            "-chardev", f"socket,id=link,path={sock},server=on,wait=off",
                            "-device", dev], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if p.returncode != 1 or "link-timeout-ms must be 1 to" not in p.stdout:
            return False
    return True


# A bad property value and the start-up error it gets (docs/bad-input.md)
BAD_PROPERTIES = [
    ("dw-pcie-ep,num-ob-regions=257", "at most 256 outbound iATU regions, not 257"),
    ("dw-pcie-ep,num-ib-regions=300", "at most 256 inbound iATU regions, not 300"),
    ("dw-pcie-ep,atu-region-align=0x800",
     "the iATU region alignment must be a power of two from 4 KiB to 2 GiB, not 0x800"),
    ("dw-pcie-ep,atu-region-align=0x3000", "region alignment must be a power of two"),
    ("dw-pcie-ep,atu-max-region-size=0x80000000",
     "the maximum iATU region size must be a power of two of at least 4 GiB"),
    ("dw-pcie-ep,edma-wr-channels=0", "edma-wr-channels must be 1 to 8, not 0"),
    ("dw-pcie-ep,edma-rd-channels=9", "edma-rd-channels must be 1 to 8, not 9"),
    ("dw-pcie-ep,addr-space-size=0x1800",
     "addr-space-size must be a power of two of at least 4 KiB, not 0x1800"),
    ("dw-pcie-ep,max-link-speed=6", "max-link-speed must be 1 to 5"),
    ("dw-pcie-ep,max-link-speed=0", "max-link-speed must be 1 to 5"),
    ("dw-pcie-ep,num-lanes=3", "num-lanes must be 1, 2, 4, 8 or 16, not 3"),
    ("dw-pcie-ep,ip-version=5.4", "ip-version '5.4' is not of the form X.YZa"),
    ("dw-pcie-ep,edma-legacy=on,ip-version=5.40a",
     "edma-legacy needs an ip-version before 5.40a"),
    ("rcar-gen4-pcie-ep,edma-legacy=on,ip-version=5.20a",
     "rcar-gen4-pcie-ep has no legacy eDMA viewport"),
]


def bad_properties_refused(qemu, tmp):
    """Each bad property value stops QEMU at start-up with its message;
    the same devices with good values (the control) start."""
    for dev, want in BAD_PROPERTIES + [("dw-pcie-ep,num-ob-regions=256", None),
                                       ("rcar-gen4-pcie-ep", None)]:
        p = subprocess.run([qemu, "-M", "virt", "-display", "none", "-nic", "none",
                            "-monitor", "stdio", "-serial", "none", "-S",
                            "-device", dev], input="quit\n", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if want is None:
            assert p.returncode == 0, f"{dev}: exit {p.returncode}: {p.stdout}"
        else:
            assert p.returncode == 1 and want in p.stdout, \
                f"{dev}: exit {p.returncode}: {p.stdout.strip()}"
    return True


def main():
    qemu = sys.argv[1]
    print("TAP version 13")
    print(f"1..{len(CASES) + 15}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES, 1):
            name = case.__name__[5:]
            c = Case(qemu, tmp, name, getattr(case, "timeout_ms", 500),
                     getattr(case, "hello", None),
                     getattr(case, "device", "dw-pcie-ep"),
                     getattr(case, "posted", NO_POSTED))
            try:
                case(c)
                print(f"ok {i} {name}: {case.__doc__.splitlines()[0]}")
            except (AssertionError, EOFError, OSError) as e:
                failed += 1
                print(f"not ok {i} {name}: {e}")
                for line in c.stderr().splitlines()[-10:]:
                    print(f"# {line}")
            finally:
                c.close()
        # Private RAM is not offered: its fd would map a copy.
        sock = os.path.join(tmp, "private.sock")
        log = open(os.path.join(tmp, "private.log"), "w+")
        ep = EP(qemu, sock, log, ram="memory-backend-memfd,id=ram,size=128M,share=off")
        peer = Peer(sock)
        try:
            link_up(ep, peer)
            time.sleep(0.2)
            log.flush()
            log.seek(0)
            ok = peer.count(SHM) == 0 and "not a shared, sealed memfd" in log.read()
        finally:
            ep.stop()
            peer.s.close()
        n = len(CASES) + 1
        print(f"{'ok' if ok else 'not ok'} {n} private_ram: share=off RAM is not offered")
        failed += not ok
        try:
            ok = bad_timeouts_refused(qemu, tmp)
        except subprocess.TimeoutExpired:
            ok = False
        print(f"{'ok' if ok else 'not ok'} {n + 1} bad_timeouts: a timeout above "
              f"INT_MAX ms is refused at start-up")
        failed += not ok
        ok = host_reach_limited(qemu, tmp)
        print(f"{'ok' if ok else 'not ok'} {n + 2} host_reach: an EP's requests "
              f"reach host RAM, not the GIC CPU interface")
        failed += not ok
        n += 1
        ok = config_copy_converges(qemu, tmp)
        print(f"{'ok' if ok else 'not ok'} {n + 2} config_copy_converges: "
              f"{config_copy_converges.__doc__.splitlines()[0]}")
        failed += not ok
        n += 1
        ok = host_lying_image(qemu, tmp)
        print(f"{'ok' if ok else 'not ok'} {n + 2} host_lying_image: "
              f"{host_lying_image.__doc__.splitlines()[0]}")
        failed += not ok
        for i, (fn, name) in enumerate(((smp_ep, "smp_ep"),
                                        (smp_host, "smp_host"),
                                        (poweroff_reset, "poweroff_reset"),
                                        (vcpu_flood_stalled_peer, "vcpu_flood"),
                                        (vcpu_stop_while_waiting, "vcpu_stop_waiting"),
                                        (bad_chardev_refused, "bad_chardev"),
                                        (host_bad_requests, "host_bad_requests"),
                                        (host_bad_image_bounds, "host_image_bounds"),
                                        (host_image_tag, "host_image_tag"),
                                        (bad_properties_refused, "bad_properties")),
                                       n + 3):
            try:
                ok = fn(qemu, tmp)
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError,
                    OSError, EOFError, AssertionError) as e:
                print(f"# {e}")
                ok = False
            doc = fn.__doc__.split("\n")[0]
            print(f"{'ok' if ok else 'not ok'} {i} {name}: {doc}")
            failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
