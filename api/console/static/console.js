// The console's only script: the inbox follows its event stream, a timeline with messages still on
// their way refreshes until they settle, and waiting times tick. Without it every page still reads.
"use strict";

function swap(container, html) {
  // Keeps the keyboard focus on the same link when the rows around it are replaced.
  const focused = document.activeElement;
  const href = focused && container.contains(focused) ? focused.getAttribute("href") : null;
  container.innerHTML = html;
  if (href) {
    const again = container.querySelector(`a[href="${CSS.escape(href)}"]`);
    if (again) again.focus();
  }
  tick();
}

async function fetchInto(container, url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (response.redirected && response.url.endsWith("/console/login")) {
    window.location.assign("/console/login");
    return false;
  }
  if (!response.ok) return false;
  swap(container, await response.text());
  return true;
}

function followInbox(section) {
  const rows = document.getElementById("inbox-rows");
  const status = document.getElementById("live-status");
  let wanted = null;  // the position the rows must reach; refreshes are coalesced
  let busy = false;

  async function refresh() {
    if (busy || wanted === null) return;
    busy = true;
    const position = wanted;
    wanted = null;
    try {
      await fetchInto(rows, `${section.dataset.rows}?min_position=${position}`);
    } finally {
      busy = false;
      if (wanted !== null) refresh();
    }
  }

  const source = new EventSource(section.dataset.stream);
  source.onopen = () => { status.textContent = "Live: updates appear as they happen."; };
  source.onerror = () => {
    status.textContent = "Connection lost, reconnecting…";
    // A closed stream was not resumed (a signed-out session's is redirected to the sign-in page):
    // fetching the rows goes to the sign-in page when the session has ended.
    if (source.readyState !== EventSource.CLOSED) return;
    status.textContent = "Connection lost: reload the page to follow the inbox again.";
    fetchInto(rows, section.dataset.rows);
  };
  source.onmessage = (event) => {
    const position = Number(event.lastEventId) || 0;
    wanted = Math.max(wanted || 0, position);
    refresh();
  };
  window.addEventListener("pagehide", () => source.close());
}

function followTimeline(timeline) {
  async function again() {
    const list = timeline.querySelector("[data-pending]");
    if (!list || list.dataset.pending !== "true") return;
    await fetchInto(timeline, timeline.dataset.refresh);
    setTimeout(again, 1000);
  }
  setTimeout(again, 500);
}

function waited(since) {
  const seconds = Math.max(0, Math.floor((Date.now() - since) / 1000));
  const minutes = Math.floor(seconds / 60), hours = Math.floor(seconds / 3600), days = Math.floor(seconds / 86400);
  if (seconds < 60) return `${seconds} s`;
  if (hours < 1) return `${minutes} min`;
  if (days < 1) return `${hours} h ${minutes % 60} min`;
  return `${days} d ${hours % 24} h`;
}

function tick() {
  for (const time of document.querySelectorAll("time[data-waiting]")) {
    time.textContent = waited(Date.parse(time.getAttribute("datetime")));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const inbox = document.getElementById("inbox");
  if (inbox && inbox.dataset.stream) followInbox(inbox);
  const timeline = document.getElementById("timeline");
  if (timeline && timeline.dataset.refresh) followTimeline(timeline);
  setInterval(tick, 15000);
});
