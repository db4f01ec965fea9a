// Score updates, and what to do when some of them could not be replayed.
const source = new EventSource("/matches/final/events");

source.addEventListener("score", (event) => {
  const score = JSON.parse(event.data);
  showScore(score.home, score.away); // event.lastEventId is what a reconnect resumes from
});

source.addEventListener("gap", (event) => {
  // Events were missed for good (history too short, server restarted, unknown id):
  // reload the current state instead of trusting the stream to have it all.
  const { reason } = JSON.parse(event.data);
  console.warn("missed events:", reason);
  fetch("/matches/final").then((response) => response.json()).then(showMatch);
});
