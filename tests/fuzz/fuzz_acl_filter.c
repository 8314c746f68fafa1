/*
 * libFuzzer target for the ACL filter on a live stream (proxy/acl_filter.c):
 * client bytes and broker bytes interleaved in arbitrary pieces, with the
 * byte movers draining either queue at arbitrary moments, as a session
 * would.
 *
 * Input: a first byte of settings (protocol level 3/4/5, --acl-deny
 * disconnect, whether the broker's CONNACK went by), then records: a byte
 * whose low bit says client (0) or broker (1) and whose high bits say how
 * many queued bytes the mover takes first, a length byte, the bytes.
 * Checked, beyond memory safety: after a client step the filter holds no
 * more than ACL_MAX_INSPECT bytes back; the framer the filter feeds never
 * counts fewer bytes than the broker queue holds; nothing goes up after a
 * step that ended the stream; the acks awaited and the gates on held
 * answers stay within their bounds and cover only the backlog, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/acl_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char RULES[] =
	"topic read public/#\n"
	"user alice\n"
	"topic readwrite a/#\n"
	"topic deny a/secret\n"
	"pattern read dev/%u/%c/+\n";

static void check_order(const struct acl_session *a)
{
	const struct acl_order *o = a->order;
	size_t end = 0;

	if (o == NULL)
		return;
	if (o->n > ACL_MAX_INFLIGHT || o->n_gates > ACL_MAX_GATES)
		abort();
	for (int i = 0; i < o->n_gates; i++) {
		if (o->gates[i].end <= end || o->gates[i].end > a->backlog.len)
			abort();
		end = o->gates[i].end;
	}
	for (int i = 1; i < o->n; i++)
		if (o->ring[i].seq <= o->ring[i - 1].seq)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };
	struct slice user = { (const uint8_t *)"alice", 5 }, cid = { (const uint8_t *)"c1", 2 };
	struct blk_cache c;
	struct bufq up = { 0 }, down = { 0 };
	struct mqtt_framer f = { 0 };
	struct acl_io io = { &up, &down, &f, &c, NULL };
	struct acl_session *a;
	struct acl *acl;
	char err[200];
	size_t i = 1;
	int ended = 0;

	if (size < 1)
		return 0;
	acl = acl_parse(RULES, sizeof(RULES) - 1, "rules", err, sizeof(err));
	if (acl == NULL)
		abort();
	blk_cache_init(&c, 4);
	a = acl_session_new(acl, NULL, (data[0] & 8) ? NULL : &user, cid, (uint8_t)(3 + data[0] % 3),
	                    (data[0] & 16) != 0);
	if (a == NULL)
		abort();
	if (data[0] & 32)
		mqtt_framer_feed(&f, connack, sizeof(connack));
	while (i + 2 <= size) {
		uint8_t kind = data[i], len = data[i + 1];
		size_t n = size - i - 2 < len ? size - i - 2 : len;
		const uint8_t *p = data + i + 2;

		i += 2 + n;
		if (kind & 1) {
			size_t from;

			bufq_drain(&down, &c, (size_t)(kind >> 1) * 16);
			from = bufq_len(&down);
			if (!bufq_add(&down, &c, p, n))
				break;
			if (acl_down_busy(a)) {
				if (!acl_filter_down(a, &io, from))
					break;
			} else {
				mqtt_framer_feed(&f, p, n);
			}
			if (!f.lost && f.total < bufq_len(&down))
				abort();
			check_order(a);
		} else {
			struct acl_report rep;
			size_t from, before;
			enum acl_step r;

			bufq_drain(&up, &c, (size_t)(kind >> 1) * 16);
			from = before = bufq_len(&up);
			if (!bufq_add(&up, &c, p, n))
				break;
			r = acl_filter_up(a, &io, from, &rep);
			if (a->up_held.len > ACL_MAX_INSPECT)
				abort();
			if (ended && bufq_len(&up) > before)
				abort();
			check_order(a);
			if (r == ACL_OOM)
				break;
			if (r != ACL_OK)
				ended = 1;
		}
	}
	acl_session_free(a);
	bufq_clear(&up, &c);
	bufq_clear(&down, &c);
	blk_cache_cleanup(&c);
	return 0;
}
