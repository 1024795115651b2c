#!/usr/bin/env python3
# client.py --
#
#	The soak test's load generator: makes TOTAL connections to
#	127.0.0.1:PORT, CONCURRENCY at a time, each sending one HTTP/1.0
#	request and reading to end-of-file, and accounts for every one of
#	them exactly (ab counts a lost connection under several headings and
#	silently retries some, which is no use for "nothing lost"):
#
#	    ok        the whole expected answer, then end-of-file
#	    short     end-of-file before the whole answer (or none at all)
#	    reset     the connection was reset
#	    refused   could not connect
#	    timeout   no end-of-file within TIMEOUT seconds
#	    wrong     something other than the expected answer
#
#	    python3 client.py PORT TOTAL CONCURRENCY SECONDS TIMEOUT
#
#	Stops starting connections after SECONDS. Prints one line of
#	"key value" pairs: the counts above, "made N" and "seconds S".
#	Every PROGRESS connections it prints "progress N" on stderr.

import asyncio
import sys
import time

REQUEST = b"GET / HTTP/1.0\r\nHost: soak\r\n\r\n"
ANSWER = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length:"
          b" 3\r\nConnection: close\r\n\r\nok\n")
PROGRESS = 100000


async def one(port, timeout, counts):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        counts["refused"] += 1
        return
    try:
        writer.write(REQUEST)
        data = await asyncio.wait_for(reader.read(), timeout)
        if data == ANSWER:
            counts["ok"] += 1
        elif ANSWER.startswith(data):
            counts["short"] += 1
        else:
            counts["wrong"] += 1
    except (ConnectionResetError, BrokenPipeError):
        counts["reset"] += 1
    except asyncio.TimeoutError:
        counts["timeout"] += 1
    except OSError:
        counts["reset"] += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def main(port, total, concurrency, seconds, timeout):
    counts = dict(ok=0, short=0, reset=0, refused=0, timeout=0, wrong=0)
    state = {"made": 0}
    start = time.monotonic()
    stop = start + seconds

    async def loop():
        while state["made"] < total and time.monotonic() < stop:
            state["made"] += 1
            if state["made"] % PROGRESS == 0:
                print("progress %d" % state["made"], file=sys.stderr,
                      flush=True)
            await one(port, timeout, counts)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    fields = list(counts.items()) + [("made", state["made"]),
                                     ("seconds", "%.1f" % elapsed)]
    print(" ".join("%s %s" % kv for kv in fields), flush=True)


if __name__ == "__main__":
    port, total, concurrency, seconds, timeout = (int(a) for a in sys.argv[1:6])
    asyncio.run(main(port, total, concurrency, seconds, timeout))
