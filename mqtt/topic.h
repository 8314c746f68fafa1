/*
 * Topic Names and Topic Filters (5.0 4.7, 3.1.1 4.7): validity, matching,
 * and the two filter-against-filter questions an ACL asks of a SUBSCRIBE
 * ("is every topic this filter can match allowed?" and "can this filter
 * match any denied topic?"). Shared subscriptions (5.0 4.8.2) are split
 * into their share name and the filter they subscribe to.
 *
 * Everything works on borrowed slices and compares bytes exactly: no
 * normalization of any kind [MQTT-4.7.3-4]. A Topic Name is treated as a
 * filter without wildcards, so every function taking filters also takes
 * names.
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

/*
 * Returns 1 if |filter| is a valid Topic Filter: at least one byte
 * [MQTT-4.7.3-1], at most 65,535 [MQTT-4.7.3-3], '#' only as the whole last
 * level [MQTT-4.7.1-2] and '+' only as a whole level [MQTT-4.7.1-3]. UTF-8
 * validity is checked separately.
 */
int mqtt_topic_filter_valid(struct slice filter);

/*
 * Returns 1 if the Topic Name |topic| matches |filter| (4.7.1): '+' matches
 * exactly one level (an empty one too), '#' the parent level and any number
 * of levels below it, and a filter starting with a wildcard never matches a
 * name starting with '$' [MQTT-4.7.2-1]. Both are assumed valid; for
 * invalid input the answer is unspecified but the call is memory-safe.
 */
int mqtt_topic_matches(struct slice filter, struct slice topic);

/*
 * Returns 1 if every Topic Name matched by |inner| is also matched by
 * |outer| (both valid filters; a name counts as a filter matching itself).
 * For a name this is mqtt_topic_matches(outer, inner). Examples: "a/#"
 * covers "a/+/c" and "a"; "+/x" does not cover "$SYS/x"; "a/+" does not
 * cover "a/#".
 */
int mqtt_topic_filter_covers(struct slice outer, struct slice inner);

/*
 * Returns 1 if at least one Topic Name is matched by both filters, with
 * [MQTT-4.7.2-1] applied to each. For a name |b| this is
 * mqtt_topic_matches(a, b).
 */
int mqtt_topic_filters_overlap(struct slice a, struct slice b);

enum mqtt_share_result {
	MQTT_SHARE_NONE,      /* not a shared subscription */
	MQTT_SHARE_OK,        /* *share and *filter are set */
	MQTT_SHARE_INVALID,   /* starts with "$share/" but breaks 4.8.2 */
};

/*
 * Splits a Shared Subscription "$share/{ShareName}/{filter}" (5.0 4.8.2):
 * on MQTT_SHARE_OK, |share| is the ShareName and |filter| the Topic Filter
 * after it, both inside |full|. MQTT_SHARE_INVALID when the ShareName is
 * empty [MQTT-4.8.2-1], holds '+' or '#', or is not followed by '/' and a
 * non-empty filter [MQTT-4.8.2-2]. The inner filter's own validity is the
 * caller's check (mqtt_topic_filter_valid).
 */
enum mqtt_share_result mqtt_topic_shared_split(struct slice full, struct slice *share,
                                               struct slice *filter);

#endif
