/*
 * Framing of MQTT control packets (packet.h). Only the fixed header is read
 * here; what a packet type allows in its flags is the type's parser's job.
 */
#include "mqtt/packet.h"

enum mqtt_frame_result mqtt_frame_parse(const uint8_t *buf, size_t len,
                                        size_t max_len, struct mqtt_frame *out)
{
	uint32_t remaining = 0;
	size_t i;

	if (buf == NULL || len < 2)
		return MQTT_FRAME_NEED_MORE;

	/* The remaining length is read by hand rather than with cursor_varint
	 * because here "not all bytes yet" must differ from "malformed". */
	for (i = 0; i < 4; i++) {
		uint8_t b;

		if (1 + i >= len)
			return MQTT_FRAME_NEED_MORE;
		b = buf[1 + i];
		remaining |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			/* [MQTT-1.5.5-1] minimal encoding only */
			if (i > 0 && b == 0)
				return MQTT_FRAME_MALFORMED;
			break;
		}
	}
	/* 3.1.1 2.2.3 / 5.0 1.5.5: four bytes at most */
	if (i == 4)
		return MQTT_FRAME_MALFORMED;

	out->type = buf[0] >> 4;
	out->flags = buf[0] & 0x0f;
	out->header_len = 2 + i;
	out->remaining_len = remaining;
	out->total_len = out->header_len + remaining;
	if (out->total_len > max_len)
		return MQTT_FRAME_TOO_LARGE;
	return MQTT_FRAME_OK;
}
