#include "mqtt/framer.h"

void mqtt_framer_feed(struct mqtt_framer *f, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && !f->lost) {
		if (f->state == 2) {
			size_t k = f->left < len - i ? (size_t)f->left : len - i;

			f->left -= k;
			i += k;
			f->total += k;
		} else if (f->state == 0) {
			f->state = 1;
			f->acc = 0;
			f->shift = 0;
			i++;
			f->total++;
		} else {
			uint8_t b = p[i++];

			f->total++;
			f->acc |= (uint32_t)(b & 0x7f) << f->shift;
			f->shift += 7;
			if (!(b & 0x80)) {
				f->left = f->acc;
				f->state = 2;
			} else if (f->shift >= 28) {
				/* A fifth length byte: not MQTT, stop guessing. */
				f->lost = 1;
				return;
			}
		}
		if (f->state == 2 && f->left == 0) {
			f->state = 0;
			f->boundary = f->total;
		}
	}
}
