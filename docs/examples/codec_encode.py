"""``encode_event``: one event to bytes, exactly as a browser will read it back."""

from litestar_sse.codec import encode_event

# Fields come out in a fixed order (comment, event, id, retry, data) and the blank line
# that makes the client dispatch the event is included.
frame = encode_event("hello", event="greeting", id=7, retry=3_000)
assert frame == b"event: greeting\r\nid: 7\r\nretry: 3000\r\ndata: hello\r\n\r\n"

# CR, LF and CRLF in data start a new data line; the client joins the lines with "\n".
assert encode_event("one\r\ntwo\nthree", sep="\n") == b"data: one\ndata: two\ndata: three\n\n"

# Only CR and LF end a line. Unicode line separators stay inside the data, as in a browser.
assert encode_event("a\u2028b", sep="\n") == "data: a\u2028b\n\n".encode()

# data=None writes no data line: the client updates its last event id but dispatches nothing.
assert encode_event(None, id="checkpoint-9", sep="\n") == b"id: checkpoint-9\n\n"

# A comment on its own: a keep-alive that no client ever sees as an event. No blank line follows
# it: some decoders (openai-python, httpx-sse) dispatch an empty event on every blank line.
assert encode_event(None, comment="still here", sep="\n") == b": still here\n"
