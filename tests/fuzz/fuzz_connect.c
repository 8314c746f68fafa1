/*
 * libFuzzer target for the CONNECT path: framing, the strict parser, the
 * version peek, the property reader at every place, and the serializer.
 * Every CONNECT that parses must re-serialize to the identical bytes;
 * anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "mqtt/properties.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks |data| as a property block at each place; only memory safety and
 * termination are checked here. */
static void fuzz_properties(const uint8_t *data, size_t size)
{
	struct slice block = { data, size };
	unsigned place;

	for (place = MQTT_PLACE_CONNECT; place <= MQTT_PLACE_AUTH; place <<= 1) {
		struct mqtt_props_reader r;
		struct mqtt_property p;
		const char *why = NULL;
		enum mqtt_prop_result res;

		mqtt_props_init(&r, block, place);
		while ((res = mqtt_props_next(&r, &p, &why)) == MQTT_PROP_OK)
			;
		if (res != MQTT_PROP_END && why == NULL)
			abort();
	}
}

static void check_round_trip(const uint8_t *pkt, size_t len)
{
	struct mqtt_connect c;
	const char *why = NULL;
	uint8_t *out;
	size_t n;

	if (mqtt_connect_parse(pkt, len, &c, &why) != MQTT_CONNECT_OK) {
		if (why == NULL)
			abort();   /* every refusal names its rule */
		return;
	}
	if (mqtt_connect_serialized_len(&c) != len)
		abort();
	out = malloc(len);
	if (out == NULL)
		return;
	if (mqtt_connect_serialize(&c, out, len - 1) != 0)
		abort();   /* must not fit one byte short */
	n = mqtt_connect_serialize(&c, out, len);
	if (n != len || memcmp(out, pkt, len) != 0)
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_frame f;
	struct mqtt_connect c;
	uint8_t version;
	uint8_t *pkt;

	(void)mqtt_connect_peek_version(data, size, &version);
	/* The whole input, trailing bytes and all, must parse safely too. */
	(void)mqtt_connect_parse(data, size, &c, NULL);
	fuzz_properties(data, size);

	if (mqtt_frame_parse(data, size, size, &f) != MQTT_FRAME_OK ||
	    f.total_len > size)
		return 0;
	/* A copy of exactly the frame, so any read past it is caught. */
	pkt = malloc(f.total_len);
	if (pkt == NULL)
		return 0;
	memcpy(pkt, data, f.total_len);
	check_round_trip(pkt, f.total_len);
	free(pkt);
	return 0;
}
