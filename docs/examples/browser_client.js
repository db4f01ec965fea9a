// The browser side: EventSource reconnects by itself and sends Last-Event-ID when it does.
const source = new EventSource("/count?limit=5");

// Events sent with an event type ("event: count") reach listeners for that type only;
// onmessage sees events without a type.
source.addEventListener("count", (event) => {
  console.log("count", Number(event.data));
});

// A stream that ends is reconnected after `retry` ms: close it when you are done.
source.onerror = () => {
  if (source.readyState === EventSource.CONNECTING) console.log("reconnecting...");
};
