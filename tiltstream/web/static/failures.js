"use strict";
// Copy an operator command to the clipboard.
for (const button of document.querySelectorAll("button.copy")) {
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.command);
      button.textContent = "copied";
    } catch (error) {
      button.textContent = "select and copy";
    }
  });
}
