// The dashboard's one script. Every page works without it; it only asks before
// destructive actions. Loaded with `defer`, from the app itself (no inline script).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
