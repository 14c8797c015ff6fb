#!/usr/bin/env python3
"""A stranger at fanout's ports: a plain ZeroMQ peer (pyzmq, no keys, no
fanout code) that connects a DEALER to each endpoint, sends one message and
counts what comes back within a time limit.

    plain_peer.py HEX_MESSAGE WAIT_MS ENDPOINT...

Prints {"endpoint": replies, ...} as JSON. A keyed fanout must answer 0;
without keys, a request such as Status gets its reply (the control).
"""
import json
import sys

import zmq

message = bytes.fromhex(sys.argv[1])
wait_ms = int(sys.argv[2])
ctx = zmq.Context()
replies = {}
for endpoint in sys.argv[3:]:
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    dealer.send(message)
    got = 0
    while dealer.poll(wait_ms):
        dealer.recv_multipart()
        got += 1
    replies[endpoint] = got
    dealer.close()
ctx.term()
print(json.dumps(replies))
