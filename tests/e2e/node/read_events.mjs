// Read an event stream with the eventsource package until its "done" event; print what
// arrived as JSON lines on stdout. Usage: node read_events.mjs URL
import { EventSource } from "eventsource";

const received = [];
const source = new EventSource(process.argv[2]);
const keep = (e) => received.push({ type: e.type, data: e.data, id: e.lastEventId });
source.onmessage = keep;
source.addEventListener("tick", keep);
source.addEventListener("done", (e) => {
  keep(e);
  source.close();
  clearTimeout(timeout);
  process.stdout.write(JSON.stringify(received) + "\n");
});
const timeout = setTimeout(() => {
  process.stderr.write("timed out; received " + JSON.stringify(received) + "\n");
  process.exit(2);
}, 20000);
