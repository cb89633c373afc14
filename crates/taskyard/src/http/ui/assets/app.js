// The dashboard's one script. Every page works without it: it asks before destructive
// actions, and keeps the page live. Loaded with `defer`, from the app itself (no inline
// script, as the Content-Security-Policy requires).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Live regions: the parts of a page marked `data-live-region` are drawn again by the
// server when a run starts or ends (its events arrive over the server-sent event stream
// of this instance), at most once a second however many events come, and every five
// seconds without any while the page is visible (runs on other instances send no event
// here).
const regions = () => document.querySelectorAll("[data-live-region]");
const EVENTS = "/_tasks/ui/events";
let refreshing = false;
let again = false;
// When the last refresh of any kind began, and the last one an event asked for.
let last = 0;
let lastEvent = 0;
let timer = null;

async function refresh() {
  if (refreshing) {
    // One more once this one is in: it may have been drawn before the event.
    again = true;
    return;
  }
  refreshing = true;
  last = Date.now();
  try {
    const response = await fetch(window.location.href, { headers: { accept: "text/html" }, credentials: "same-origin" });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of regions()) {
        const fresh = page.querySelector(`[data-live-region="${region.dataset.liveRegion}"]`);
        if (fresh && fresh.innerHTML !== region.innerHTML) {
          region.innerHTML = fresh.innerHTML;
        }
      }
    }
  } catch (_) {
    // The next event or tick tries again.
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

// One refresh for a burst of events: the first at once, then at most one a second. The
// five-second refresh does not hold an event's back.
function soon() {
  if (timer !== null) {
    return;
  }
  const wait = Math.max(0, lastEvent + 1000 - Date.now());
  timer = window.setTimeout(() => {
    timer = null;
    lastEvent = Date.now();
    refresh();
  }, wait);
}

function follow() {
  const live = regions();
  if (live.length === 0) {
    return;
  }
  const scope = document.querySelector("[data-live-run]");
  const run = scope ? scope.dataset.liveRun : null;
  const task = live[0].dataset.liveTask;
  const query = run ? `?run=${encodeURIComponent(run)}` : task ? `?task=${encodeURIComponent(task)}` : "";
  const source = new EventSource(EVENTS + query);
  source.addEventListener("started", soon);
  source.addEventListener("finished", () => {
    // A run's stream ends with its end: no need to come back.
    if (run) {
      source.close();
    }
    soon();
  });
  source.addEventListener("lagged", soon);
  source.addEventListener("progress", (event) => {
    const progress = JSON.parse(event.data);
    const bar = document.querySelector("progress[data-run-progress]");
    const message = document.querySelector("[data-run-progress-message]");
    if (bar) {
      bar.value = progress.fraction;
      bar.textContent = `${Math.round(progress.fraction * 100)} %`;
    }
    if (message) {
      message.textContent = `${Math.round(progress.fraction * 100)} %${progress.message ? " — " + progress.message : ""}`;
    }
    if (!bar) {
      soon();
    }
  });
  window.setInterval(() => {
    if (document.visibilityState === "visible" && Date.now() - last >= 5000) {
      refresh();
    }
  }, 1000);
}

follow();
