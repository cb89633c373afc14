// taskyard dev: reloads the page once a version other than the one that served it serves
// (a new process swapped in, or a failed build's errors are to be shown), and keeps what
// the page held across the reload: its scroll position and what its form fields hold
// (password and file fields aside), for the same address. A failed build's page, which
// reloads itself without this script, leaves what was kept to the page after it.
(() => {
  const served = document.currentScript.dataset.version;
  const KEY = "taskyard-dev-page";
  const SKIPPED = ["password", "file", "hidden", "submit", "button", "reset", "image"];
  const checked = (field) => field.type === "checkbox" || field.type === "radio";
  // Each field by its id, else by its name and its place among those of that name, else
  // by its place among the fields.
  const fields = () => {
    const seen = new Map();
    return Array.from(document.querySelectorAll("input, textarea, select"))
      .filter((field) => !SKIPPED.includes(field.type))
      .map((field, at) => {
        if (field.id) return ["#" + field.id, field];
        if (field.name) {
          const count = seen.get(field.name) || 0;
          seen.set(field.name, count + 1);
          return [field.name + "/" + count, field];
        }
        return ["@" + at, field];
      });
  };
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(KEY));
    sessionStorage.removeItem(KEY);
  } catch (_) {}
  if (kept && kept.href === location.href) {
    for (const [key, field] of fields()) {
      if (!(key in kept.fields)) continue;
      if (checked(field)) field.checked = kept.fields[key];
      else field.value = kept.fields[key];
    }
    // The browser's own restoring would put back the scroll of the page reloaded, which
    // may be a failed build's page, not this one; and it may come after the load, so the
    // scroll is set again once the load's work is done.
    history.scrollRestoration = "manual";
    const scroll = () => {
      window.scrollTo(kept.x, kept.y);
      setTimeout(() => window.scrollTo(kept.x, kept.y), 50);
    };
    if (document.readyState === "complete") scroll();
    else addEventListener("load", scroll);
  }
  new EventSource("/_taskyard/dev/events").addEventListener("version", (event) => {
    if (event.data === served) return;
    const state = { href: location.href, x: scrollX, y: scrollY, fields: {} };
    for (const [key, field] of fields()) {
      state.fields[key] = checked(field) ? field.checked : field.value;
    }
    try {
      sessionStorage.setItem(KEY, JSON.stringify(state));
    } catch (_) {}
    location.reload();
  });
})();
