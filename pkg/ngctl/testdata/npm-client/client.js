// Drives an ng server with the npm rtpengine-client: ping, offer, answer,
// query, list and delete. Prints one JSON line per reply; exits 1 on an
// error reply or a timeout. Usage: node client.js PORT [HOST]
'use strict';
const { Client } = require('rtpengine-client');

const port = parseInt(process.argv[2], 10);
const host = process.argv[3] || '127.0.0.1';
const client = new Client({ timeout: 3000 });
const callId = `npm-${process.pid}@test`;
const offerSdp = 'v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0 8\r\n';
const answerSdp = 'v=0\r\no=- 2 2 IN IP4 198.51.100.8\r\ns=-\r\nc=IN IP4 198.51.100.8\r\nt=0 0\r\nm=audio 9100 RTP/AVP 8\r\n';

async function main() {
  const steps = [
    ['ping', () => client.ping(port, host)],
    ['offer', () => client.offer(port, host, { 'call-id': callId, 'from-tag': 'npm-a', sdp: offerSdp, replace: ['origin', 'session-connection'], ICE: 'remove' })],
    ['answer', () => client.answer(port, host, { 'call-id': callId, 'from-tag': 'npm-a', 'to-tag': 'npm-b', sdp: answerSdp, replace: ['origin', 'session-connection'] })],
    ['query', () => client.query(port, host, { 'call-id': callId })],
    ['list', () => client.list(port, host, { limit: 10 })],
    ['delete', () => client.delete(port, host, { 'call-id': callId, 'from-tag': 'npm-a', 'delete-delay': 0 })],
  ];
  for (const [name, fn] of steps) {
    const res = await fn();
    console.log(JSON.stringify({ step: name, reply: res }));
    if (!res || res.result === 'error') {
      throw new Error(`${name}: ${JSON.stringify(res)}`);
    }
  }
}

main()
  .then(() => { client.close(); process.exit(0); })
  .catch((err) => { console.error(String(err)); client.close(); process.exit(1); });
