// Follow /orders across reconnections and page loads.
const STORAGE_KEY = "orders:last-event-id";

function connect() {
  // A new EventSource cannot send headers: the id saved by an earlier visit goes in the URL.
  const saved = localStorage.getItem(STORAGE_KEY);
  const url = saved ? `/orders?lastEventId=${encodeURIComponent(saved)}` : "/orders";
  const source = new EventSource(url);

  source.addEventListener("order", (event) => {
    localStorage.setItem(STORAGE_KEY, event.lastEventId);
    const line = document.createElement("li");
    line.textContent = event.data;
    document.querySelector("#orders").append(line);
  });

  source.onerror = () => {
    // CONNECTING: the browser reconnects by itself after `retry` ms, and sends the
    // Last-Event-ID header, which the server reads before the URL's lastEventId.
    // CLOSED: it gave up (a 503, a 204, any status but 200): reconnecting is up to us.
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, 10_000);
    }
  };
}

connect();
