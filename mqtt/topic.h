/*
 * Topic Name rules shared by the parsers (5.0 4.7, 3.1.1 4.7).
 */
#ifndef MQTT_TOPIC_H
#define MQTT_TOPIC_H

#include "mqtt/cursor.h"

/*
 * Returns 1 if |topic| may be used as a Topic Name: at least one byte
 * [MQTT-4.7.3-1] and no wildcard '#' or '+' (3.1.1 [MQTT-4.7.1-1],
 * 5.0 [MQTT-4.7.0-1]). UTF-8 validity is checked separately.
 */
int mqtt_topic_name_valid(struct slice topic);

#endif
