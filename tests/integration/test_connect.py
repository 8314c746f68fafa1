"""The CONNECT path driven with hand-built bytes over a real TLS socket:
broker down, malformed / unsupported / oversized / non-CONNECT first packets,
slow senders against --connect-timeout, and pipelining behind CONNECT."""
import socket
import time

import clients
import mqttwire as w
from harness import Skip, check, free_port, test


def _send(ctx, m, data):
    s = ctx.tls_connect(m)
    s.sendall(data)
    return s, w.Reader(s)


def _assert_broker_untouched(ctx, b, m):
    """The broker never saw a connection from the refused client. A good client
    is sent through afterwards as a barrier: the broker log is ordered, so once
    its connection is logged any earlier one would be too."""
    rc, out = clients.pub(ctx, m, "itest/barrier", 4, 1, extra=["-i", "barrier"])
    check(rc == 0, "barrier client failed rc=%d: %s" % (rc, out))
    check(b.clients() == ["barrier"], "broker saw clients %r, want only the barrier"
          % b.clients())
    check(len(b.connections()) == 1, "broker saw connections %r, want only the barrier"
          % b.connections())


def _close_reason(m, want):
    c = m.wait_close(1)[0]
    check(c.get("reason") == want, "close reason %r, want %s: %r" % (c.get("reason"), want, c))
    return c


def _refused_with(ctx, m, data, connack, reason, version):
    """Send data; assert exactly the CONNACK bytes given (or none) then close."""
    s, r = _send(ctx, m, data)
    seen = r.expect_closed(5)
    if connack is None:
        check(seen == [], "want close without any packet, got %r" % seen)
    else:
        check(len(seen) == 1 and seen[0][0] == w.CONNACK,
              "want exactly one CONNACK then close, got %r" % seen)
        code = w.connack_code(seen[0][2])
        check(code == connack, "CONNACK code 0x%02x, want 0x%02x (body %r)"
              % (code, connack, seen[0][2]))
        if version == 4:
            check(seen[0][2] == bytes([0, connack]), "3.1.1 CONNACK body %r" % seen[0][2])
    return _close_reason(m, reason)


# -- broker down -----------------------------------------------------------

def _broker_down(ctx, version, want):
    m = ctx.mqtls(upstream="127.0.0.1:%d" % free_port())
    t0 = time.monotonic()
    _refused_with(ctx, m, w.connect(version, client_id="down"), want, "broker_unreachable",
                  version)
    check(time.monotonic() - t0 < 2.0, "refusal took %.2fs" % (time.monotonic() - t0))


@test
def broker_down_gives_v311_connack_server_unavailable(ctx):
    _broker_down(ctx, 4, 0x03)


@test
def broker_down_gives_v5_connack_server_unavailable(ctx):
    _broker_down(ctx, 5, 0x88)


@test
def broker_down_gives_v31_connack_server_unavailable(ctx):
    _broker_down(ctx, 3, 0x03)


@test
def broker_down_on_a_unix_path_gives_connack_server_unavailable(ctx):
    m = ctx.mqtls(upstream="unix:%s" % (ctx.dir / "nobody.sock"))
    _refused_with(ctx, m, w.connect(4, client_id="down"), 0x03, "broker_unreachable", 4)


@test
def mosquitto_pub_sees_broker_down_as_server_unavailable(ctx):
    m = ctx.mqtls(upstream="127.0.0.1:%d" % free_port())
    rc, out = clients.pub(ctx, m, "itest/x", 5, 0)
    check(rc != 0, "mosquitto_pub succeeded with the broker down: %s" % out)
    check("Server unavailable" in out, "mosquitto_pub output lacks 'Server unavailable': %s"
          % out)


# -- malformed CONNECT -----------------------------------------------------

@test
def malformed_v5_connect_with_reserved_flag_gets_connack_0x81(ctx):
    b, m = ctx.pair()
    _refused_with(ctx, m, w.connect(5, client_id="bad", flags=0x03), 0x81, "malformed_connect", 5)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v311_connect_with_reserved_flag_is_closed_without_connack(ctx):
    b, m = ctx.pair()
    _refused_with(ctx, m, w.connect(4, client_id="bad", flags=0x03), None, "malformed_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v311_connect_with_will_qos_3_is_closed_without_connack(ctx):
    b, m = ctx.pair()
    data = w.connect(4, client_id="bad", will=("t", "m"), flags=0x02 | 0x04 | 0x18)
    _refused_with(ctx, m, data, None, "malformed_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v311_connect_with_password_but_no_username_is_closed(ctx):
    b, m = ctx.pair()
    data = w.connect(4, client_id="bad", password="secret", flags=0x02 | 0x40)
    _refused_with(ctx, m, data, None, "malformed_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v311_connect_with_invalid_utf8_client_id_is_closed(ctx):
    b, m = ctx.pair()
    data = w.connect(4, client_id=b"\xc0\x80bad")
    _refused_with(ctx, m, data, None, "malformed_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v5_connect_with_duplicate_property_gets_connack_0x82(ctx):
    # MQTT 5 3.1.2.11.2: a repeated Session Expiry Interval is a Protocol Error.
    b, m = ctx.pair()
    dup = b"\x11\x00\x00\x00\x10" * 2     # Session Expiry Interval twice
    _refused_with(ctx, m, w.connect(5, client_id="bad", properties=dup), 0x82,
                  "malformed_connect", 5)
    _assert_broker_untouched(ctx, b, m)


@test
def malformed_v5_connect_with_truncated_payload_gets_connack_0x81(ctx):
    b, m = ctx.pair()
    good = w.connect(5, client_id="abcdef")
    body = good[2:-3]                     # client id length says 6, only 3 bytes follow
    _refused_with(ctx, m, w.packet(w.CONNECT, 0, body), 0x81, "malformed_connect", 5)
    _assert_broker_untouched(ctx, b, m)


@test
def connect_with_nonzero_fixed_header_flags_is_refused(ctx):
    b, m = ctx.pair()
    data = bytearray(w.connect(4, client_id="bad"))
    data[0] |= 0x01
    _refused_with(ctx, m, bytes(data), None, "malformed_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def remaining_length_over_four_bytes_is_closed(ctx):
    b, m = ctx.pair()
    s, r = _send(ctx, m, b"\x10\xff\xff\xff\xff\x7f")
    check(r.expect_closed(5) == [], "got a packet back")
    c = m.wait_close(1)[0]
    check(c.get("reason") in ("malformed_connect", "connect_too_large"),
          "close reason %r" % c.get("reason"))
    _assert_broker_untouched(ctx, b, m)


# -- unsupported protocol level ---------------------------------------------

@test
def unsupported_protocol_level_gets_v311_connack_code_1(ctx):
    b, m = ctx.pair()
    _refused_with(ctx, m, w.connect(4, client_id="lvl", level=6), 0x01, "bad_protocol", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def v5_connect_with_protocol_level_7_gets_connack_code_1_or_0x84(ctx):
    # A level-7 client's CONNACK format is unknown: 3.1.1's 0x01 is what every
    # version can parse; MQTT 5 also allows 0x84. Assert one of those exactly.
    b, m = ctx.pair()
    s, r = _send(ctx, m, w.connect(5, client_id="lvl", level=7))
    seen = r.expect_closed(5)
    check(len(seen) == 1 and seen[0][0] == w.CONNACK, "want one CONNACK, got %r" % seen)
    check(seen[0][2] in (b"\x00\x01", b"\x00\x84\x00"), "CONNACK body %r" % seen[0][2])
    _close_reason(m, "bad_protocol")
    _assert_broker_untouched(ctx, b, m)


# -- non-CONNECT first packet ------------------------------------------------

@test
def pingreq_as_first_packet_is_closed_and_broker_untouched(ctx):
    b, m = ctx.pair()
    _refused_with(ctx, m, w.pingreq(), None, "not_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def publish_as_first_packet_is_closed_and_broker_untouched(ctx):
    b, m = ctx.pair()
    _refused_with(ctx, m, w.publish("a/b", b"sneaky"), None, "not_connect", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def second_connect_in_the_first_write_is_forwarded_for_the_broker_to_refuse(ctx):
    # mqtls checks the first packet only; the broker enforces the rest.
    b, m = ctx.pair()
    s, r = _send(ctx, m, w.connect(4, client_id="twice") + w.connect(4, client_id="twice"))
    seen = r.expect_closed(5)
    check(seen and seen[0][0] == w.CONNACK and w.connack_code(seen[0][2]) == 0,
          "want CONNACK 0 from the broker first, got %r" % seen)


# -- oversized CONNECT ---------------------------------------------------------

@test
def oversized_v311_connect_is_closed(ctx):
    b, m = ctx.pair("--max-connect-size", "1024")
    data = w.connect(4, client_id="big", username="u" * 2000)
    _refused_with(ctx, m, data, None, "connect_too_large", 4)
    _assert_broker_untouched(ctx, b, m)


@test
def oversized_v5_connect_is_closed_possibly_after_connack_0x95(ctx):
    b, m = ctx.pair("--max-connect-size", "1024")
    s, r = _send(ctx, m, w.connect(5, client_id="big", username="u" * 2000))
    seen = r.expect_closed(5)
    check(seen == [] or (len(seen) == 1 and seen[0][0] == w.CONNACK and
                         w.connack_code(seen[0][2]) == 0x95),
          "want close or CONNACK 0x95, got %r" % seen)
    _close_reason(m, "connect_too_large")
    _assert_broker_untouched(ctx, b, m)


@test
def oversized_connect_is_refused_from_its_header_alone(ctx):
    # Only the fixed header claiming 100000 bytes is sent: mqtls must not wait
    # for the body (nor the 10 s connect timeout) to refuse it.
    b, m = ctx.pair()
    t0 = time.monotonic()
    s, r = _send(ctx, m, b"\x10" + w.varint(100000))
    check(r.expect_closed(3) == [], "got a packet back")
    check(time.monotonic() - t0 < 2.0, "took %.2fs to refuse" % (time.monotonic() - t0))
    _close_reason(m, "connect_too_large")


@test
def connect_just_under_max_connect_size_is_accepted(ctx):
    b, m = ctx.pair("--max-connect-size", "1024")
    data = w.connect(4, client_id="edge", username="u" * 900)
    check(len(data) <= 1024, "test packet is %d bytes" % len(data))
    s, r = _send(ctx, m, data)
    t, _, body = r.read(5)
    check((t, body) == (w.CONNACK, b"\x00\x00"), "want CONNACK 0, got %d %r" % (t, body))


# -- slow senders ---------------------------------------------------------------

def _trickle(s, r, data, gap):
    """Send data one byte per TLS record every gap seconds; stop early if the
    peer closes. Returns True if every byte was sent."""
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        if i == len(data) - 1:
            break
        try:
            r.read(gap)
        except TimeoutError:
            continue
        except w.Closed:
            return False
        raise AssertionError("got a packet before the CONNECT was complete")
    return True


@test(timeout=20)
def slow_connect_completing_within_connect_timeout_is_accepted(ctx):
    b, m = ctx.pair("--connect-timeout", "3")
    data = w.connect(4, client_id="")          # 14 bytes: 2.6 s at 0.2 s a byte
    s = ctx.tls_connect(m)
    r = w.Reader(s)
    check(_trickle(s, r, data, 0.2), "closed before the CONNECT was complete")
    t, _, body = r.read(5)
    check((t, body) == (w.CONNACK, b"\x00\x00"), "want CONNACK 0, got %d %r" % (t, body))


@test(timeout=20)
def too_slow_connect_is_cut_at_connect_timeout(ctx):
    b, m = ctx.pair("--connect-timeout", "3")
    data = w.connect(4, client_id="slowpoke")  # 22 bytes: 10.5 s at 0.5 s a byte
    s = ctx.tls_connect(m)
    r = w.Reader(s)
    t0 = time.monotonic()
    check(not _trickle(s, r, data, 0.5), "the whole CONNECT went through")
    took = time.monotonic() - t0
    check(2.5 <= took <= 4.5, "closed after %.2fs, want about 3s" % took)
    _close_reason(m, "connect_timeout")
    _assert_broker_untouched(ctx, b, m)


@test(timeout=20)
def silent_client_after_handshake_is_cut_at_connect_timeout(ctx):
    b, m = ctx.pair("--connect-timeout", "1")
    s = ctx.tls_connect(m)
    t0 = time.monotonic()
    check(w.Reader(s).expect_closed(4) == [], "got a packet")
    took = time.monotonic() - t0
    check(0.7 <= took <= 2.5, "closed after %.2fs, want about 1s" % took)
    _close_reason(m, "connect_timeout")


# -- pipelining ---------------------------------------------------------------------

def _pipelined(ctx, version, n):
    b, m = ctx.pair()
    data = w.connect(version, client_id="pipe%d" % version) + \
        w.subscribe(1, "itest/pipe", 0, version)
    for i in range(n):
        data += w.publish("itest/pipe", b"msg-%04d" % i, version=version)
    data += w.pingreq()
    s, r = _send(ctx, m, data)          # one sendall: one TLS write (or a few records)
    t, _, body = r.read(5)
    check(t == w.CONNACK and w.connack_code(body) == 0, "first: %d %r" % (t, body))
    t, _, body = r.read(5)
    check(t == w.SUBACK, "second packet type %d, want SUBACK" % t)
    got = []
    while True:
        t, flags, body = r.read(5)
        if t == w.PINGRESP:
            break
        check(t == w.PUBLISH, "unexpected packet type %d" % t)
        got.append(w.publish_fields(flags, body, version)[1])
    want = [b"msg-%04d" % i for i in range(n)]
    check(got == want, "publishes out of order or lost: got %d, first diffs %r"
          % (len(got), [(i, g) for i, (g, x) in enumerate(zip(got, want)) if g != x][:3]))


@test
def pipelined_connect_subscribe_publish_come_back_in_order_v311(ctx):
    _pipelined(ctx, 4, 1)


@test
def pipelined_connect_subscribe_publish_come_back_in_order_v5(ctx):
    _pipelined(ctx, 5, 1)


@test
def two_hundred_pipelined_publishes_keep_their_order(ctx):
    _pipelined(ctx, 4, 200)


@test
def large_pipelined_write_behind_connect_is_kept(ctx):
    # 300 KiB of publishes right behind the CONNECT, more than one buffer's worth.
    b, m = ctx.pair()
    data = w.connect(4, client_id="bulk") + w.subscribe(1, "itest/bulk", 0)
    payload = bytes(range(256)) * 400
    for i in range(3):
        data += w.publish("itest/bulk", payload + bytes([i]))
    s, r = _send(ctx, m, data)
    types = [r.read(5) for _ in range(5)]
    check([t for t, _, _ in types] == [w.CONNACK, w.SUBACK, w.PUBLISH, w.PUBLISH, w.PUBLISH],
          "packet types %r" % [t for t, _, _ in types])
    for i, (t, f, body) in enumerate(types[2:]):
        check(w.publish_fields(f, body)[1] == payload + bytes([i]), "publish %d differs" % i)


@test(timeout=20)
def unresponsive_broker_gets_connack_server_unavailable_at_upstream_timeout(ctx):
    # A listener whose accept queue is full: the kernel drops further SYNs, so
    # mqtls's connect to it hangs until --upstream-timeout.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    ctx.note_socket(ls)
    port = ls.getsockname()[1]
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(ctx.note_socket(f))
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        raise Skip("the kernel still completes connections to a full listener")
    except (socket.timeout, OSError):
        pass
    finally:
        probe.close()
    m = ctx.mqtls("--upstream-timeout", "1", upstream="127.0.0.1:%d" % port)
    t0 = time.monotonic()
    s, r = _send(ctx, m, w.connect(5, client_id="patient"))
    seen = r.expect_closed(5)
    took = time.monotonic() - t0
    check(len(seen) == 1 and seen[0][0] == w.CONNACK and w.connack_code(seen[0][2]) == 0x88,
          "want CONNACK 0x88, got %r" % seen)
    check(0.8 <= took <= 2.5, "refused after %.2fs, want about 1s" % took)
    c = m.wait_close(1)[0]
    check(c.get("reason") in ("broker_timeout", "broker_unreachable"),
          "close reason %r: %r" % (c.get("reason"), c))
