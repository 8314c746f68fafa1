// MQTT.js over mqtts://: connect with a CA, subscribe, publish to itself,
// print the received payload and exit 0; any error exits 1.
// usage: node mqttjs_client.js mqtts://host:port CA.pem [protocolVersion]
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, caFile, version] = process.argv.slice(2);
const topic = 'itest/mqttjs';
const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
setTimeout(() => fail('timeout'), 10000).unref();

const client = mqtt.connect(url, {
  ca: fs.readFileSync(caFile),
  rejectUnauthorized: true,
  protocolVersion: Number(version || 4),
  clientId: 'mqttjs-itest',
  reconnectPeriod: 0,
  connectTimeout: 5000,
});
client.on('error', (e) => fail('error ' + e.message));
client.on('close', () => { if (!client.done) fail('closed'); });
client.on('connect', () => {
  client.subscribe(topic, { qos: 1 }, (err) => {
    if (err) fail('subscribe ' + err.message);
    client.publish(topic, 'from mqtt.js', { qos: 1 });
  });
});
client.on('message', (t, payload) => {
  console.log('GOT ' + t + ' ' + payload.toString());
  client.done = true;
  client.end(false, () => process.exit(0));
});
