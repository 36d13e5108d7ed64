// Progressive enhancement only: every page works without this file.
// After a refused form, move the keyboard and screen-reader focus to the list of problems.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
