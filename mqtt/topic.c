/*
 * Topic Name checks (topic.h).
 */
#include <string.h>

#include "mqtt/topic.h"

int mqtt_topic_name_valid(struct slice topic)
{
	if (topic.len == 0)
		return 0;
	/* '#' and '+' are single bytes that never occur inside a multi-byte
	 * UTF-8 sequence, so a byte search is exact. */
	return memchr(topic.ptr, '#', topic.len) == NULL &&
	       memchr(topic.ptr, '+', topic.len) == NULL;
}
