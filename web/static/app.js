// Progressive enhancement only: every page works without this file. No inline script anywhere:
// the Content-Security-Policy (api/headers.py) allows only this site's own files.

// After a refused form, move the keyboard and screen-reader focus to the list of problems.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});

// <form data-confirm="question">: ask before a step that cannot be undone.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// <button data-copy="element id" data-done="Copied">: copy that field's text.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  navigator.clipboard.writeText(field.value).then(
    () => { button.textContent = button.dataset.done; },
    () => field.select(), // no clipboard access: selected, ready for Ctrl-C
  );
});
